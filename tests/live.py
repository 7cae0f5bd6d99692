"""Driving live mode in tests: topics, producing a trace, `stockflow run`, reading outputs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from stockflow.connectors.kafka_admin import create_topics, input_topics, output_topics
from stockflow.state.outputs import STREAMS, OutputEvent

DECODE_OUTPUT = msgspec.json.Decoder(OutputEvent).decode


class LiveRun:
    """One live engine's world: its topic prefix, Redis prefix and recovery directory."""

    def __init__(self, brokers: str, redis_url: str, prefix: str, workdir: Path):
        self.brokers = brokers
        self.prefix = prefix
        self.env = {
            **os.environ,
            "STOCKFLOW_KAFKA_BROKERS": brokers,
            "STOCKFLOW_KAFKA_TOPIC_PREFIX": prefix,
            "STOCKFLOW_KAFKA_BATCH_SIZE": "500",
            "STOCKFLOW_REDIS_URL": redis_url,
            "STOCKFLOW_REDIS_PREFIX": prefix.rstrip("."),
            "STOCKFLOW_RECOVERY_DIR": str(workdir / "recovery"),
            "STOCKFLOW_RECOVERY_SNAPSHOT_INTERVAL_S": "0.2",
            "STOCKFLOW_RUN_CLOCK_TICK_S": "0",  # event time only, as replay: outputs comparable
        }

    def create_topics(self, partitions: dict[str, int]) -> None:
        ins = input_topics(self.prefix)
        topics = {name: partitions.get(name.removeprefix(self.prefix), 1) for name in ins}
        topics.update(dict.fromkeys(output_topics(self.prefix), 1))
        create_topics(self.brokers, topics)

    def produce(self, lines: list[bytes], topic_of=None) -> None:
        """Every line to `<prefix>orders` partition 0, or where `topic_of(line)` says."""
        producer = Producer({"bootstrap.servers": self.brokers, "linger.ms": 5})
        for line in lines:
            topic, key = topic_of(line) if topic_of else ("orders", None)
            kwargs = {"partition": 0} if topic_of is None else {"key": key}
            while True:
                try:
                    producer.produce(self.prefix + topic, line.rstrip(b"\n"), **kwargs)
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    producer.poll(0.1)
        assert producer.flush(30) == 0, "not every input message was delivered"

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "stockflow.ops.cli", "run", *args],
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def drain(self, *args: str, timeout: float = 180) -> None:
        """Run until the input topics are consumed to their end."""
        proc = self.start("--drain", *args)
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"stockflow run failed ({proc.returncode}):\n{err.decode()}"

    def outputs(self) -> list[tuple[str, bytes]]:
        """(stream, message) of every output topic, each partition read to its end."""
        consumer = Consumer({
            "bootstrap.servers": self.brokers, "group.id": f"{self.prefix}reader",
            "enable.partition.eof": True, "enable.auto.commit": False,
        })
        meta = consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in output_topics(self.prefix)
                 for p in meta.topics[t].partitions]
        consumer.assign(parts)  # no group coordination: read everything, every time
        pending = {(tp.topic, tp.partition) for tp in parts}
        got: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=0.5):
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise AssertionError(m.error().str())
                    pending.discard((m.topic(), m.partition()))
                    continue
                got.append((m.topic().removeprefix(self.prefix), m.value()))
        consumer.close()
        assert not pending, f"output partitions not read to their end: {pending}"
        return got

    def decoded(self) -> list:
        return [DECODE_OUTPUT(value) for stream, value in self.outputs() if stream in STREAMS]
