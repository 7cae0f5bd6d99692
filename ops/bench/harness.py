"""Driving a live engine over Kafka from outside: topics, producing a trace (optionally at a
fixed rate), `stockflow run` as a subprocess, reading the output topics back.

The live-mode tests and the benchmarks share it. Kafka message timestamps (set when each
message is produced) give event -> command latency: an output's timestamp minus the timestamp
of the input its `cause` names.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from stockflow.connectors.kafka_admin import (
    create_topics,
    end_offsets,
    input_topics,
    journal_topic,
    output_topics,
)
from stockflow.connectors.recorded_input import recorded_input


_TS = re.compile(rb'"ts":"[^"]*"')


def _now_rfc3339() -> bytes:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").encode()


class _Id(msgspec.Struct):
    event_id: str | None = None


_DECODE_ID = msgspec.json.Decoder(_Id).decode


def event_id_of(message: bytes) -> str | None:
    """The `event_id` of an input message, None if it has none or is not JSON."""
    try:
        return _DECODE_ID(message).event_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class LiveRun:
    """One live engine's world: its topic prefix, Redis prefix and recovery directory."""

    def __init__(self, brokers: str, redis_url: str, prefix: str, workdir: Path,
                 redis: bool = True):
        self.brokers = brokers
        self.prefix = prefix
        self.workdir = workdir
        self.env = {
            **os.environ,
            "STOCKFLOW_KAFKA_BROKERS": brokers,
            "STOCKFLOW_KAFKA_TOPIC_PREFIX": prefix,
            "STOCKFLOW_KAFKA_BATCH_SIZE": "500",
            "STOCKFLOW_REDIS_ENABLED": "true" if redis else "false",
            "STOCKFLOW_REDIS_URL": redis_url,
            "STOCKFLOW_REDIS_PREFIX": prefix.rstrip("."),
            "STOCKFLOW_RECOVERY_DIR": str(workdir / "recovery"),
            "STOCKFLOW_RECOVERY_SNAPSHOT_INTERVAL_S": "0.2",
            "STOCKFLOW_RUN_CLOCK_TICK_S": "0",  # event time only, as replay: outputs comparable
            "STOCKFLOW_RUN_METRICS_PORT": "0",
        }

    def create_topics(self, partitions: dict[str, int], extra: list[str] = ()) -> None:
        """Input topics with the given partitions (default 1), output topics with one."""
        topics = {name: partitions.get(name.removeprefix(self.prefix), 1)
                  for name in input_topics(self.prefix)}
        topics.update(dict.fromkeys(output_topics(self.prefix) + [journal_topic(self.prefix)]
                                    + list(extra), 1))
        create_topics(self.brokers, topics)

    def produce(self, lines: list[bytes], topic_of=None, rate: float | None = None,
                stamp_now: bool = False) -> float:
        """Every line to `<prefix>orders` partition 0, or where `topic_of(line)` says
        (`(topic, key)`); at `rate` messages/s if given; with `stamp_now`, each event's `ts`
        is the time it is sent, as a live producer stamps it. Returns the seconds it took."""
        producer = Producer({"bootstrap.servers": self.brokers, "linger.ms": 5})
        started = time.monotonic()
        step = max(1, int(rate / 200)) if rate else len(lines) or 1  # paced in 5 ms slices
        for i, line in enumerate(lines):
            if rate and i % step == 0:
                ahead = started + i / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            topic, key = topic_of(line) if topic_of else ("orders", None)
            kwargs = {"partition": 0} if topic_of is None else {"key": key}
            if stamp_now:
                line = _TS.sub(b'"ts":"' + _now_rfc3339() + b'"', line, count=1)
            while True:
                try:
                    producer.produce(self.prefix + topic, line.rstrip(b"\n"), **kwargs)
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    producer.poll(0.1)
            producer.poll(0)
        if producer.flush(60) != 0:
            raise RuntimeError("not every input message was delivered")
        return time.monotonic() - started

    def start(self, *args: str) -> subprocess.Popen:
        """`stockflow run`; its output goes to a file (`log()`): a pipe nobody reads would
        fill up and stop the engine."""
        self._log = open(self.workdir / f"run-{time.monotonic_ns()}.log", "w+b")
        return subprocess.Popen([sys.executable, "-m", "stockflow.ops.cli", "run", *args],
                                env=self.env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def drain(self, *args: str, timeout: float = 180) -> None:
        """Run until the input topics are consumed to their end."""
        proc = self.start("--drain", *args)
        proc.wait(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"stockflow run failed ({proc.returncode}):\n{self.log()[-4000:]}")

    def outputs(self, timestamps: bool = False, topics: list[str] | None = None) -> list:
        """(stream, message) of every output topic, each partition read to its end; with
        `timestamps`, (stream, message, timestamp ms)."""
        return read_topics(self.brokers, topics or output_topics(self.prefix), self.prefix,
                           timestamps)

    def replay_recorded(self) -> tuple[Path, list[bytes]]:
        """`stockflow replay` of the recorded input topics merged by event time: the run live
        mode must decide as. Returns the replay's output directory and the merged input
        (also written to `recorded.jsonl`)."""
        from stockflow.ops.config import load
        from stockflow.ops.replay import replay  # here: most users of the harness need not

        config = load(None, self.env)  # the live run's settings (the environment's over none)
        merged, stamps = recorded_input(self.brokers, self.prefix,
                                        max_ahead_s=config.run.max_ahead_s)
        trace, out = self.workdir / "recorded.jsonl", self.workdir / "recorded-replay"
        times = self.workdir / "recorded.times"  # each line's record timestamp (ts_ahead)
        trace.write_bytes(b"\n".join(merged) + b"\n")
        times.write_text("".join(f"{ms}\n" for ms in stamps))
        replay(str(trace), str(out), config.engine, show_progress=False,  # live's buckets
               record_times=str(times), max_ahead_s=config.run.max_ahead_s)
        return out, merged

    def written(self) -> int:
        """About how many messages the output topics hold: cheap, for watching progress
        (brokers may answer end offsets loosely; read `outputs()` for exact figures)."""
        ends = end_offsets(self.brokers, output_topics(self.prefix))
        return sum(high - low for low, high in ends.values())

    def input_times(self) -> dict[str, int]:
        """event_id -> produce timestamp (ms) of every input message."""
        times = {}
        for _, value, ts in read_topics(self.brokers, input_topics(self.prefix), self.prefix,
                                        True):
            event_id = event_id_of(value)
            if event_id is not None:
                times.setdefault(event_id, ts)
        return times


def read_topics(brokers: str, topics: list[str], prefix: str, timestamps: bool) -> list:
    consumer = Consumer({
        "bootstrap.servers": brokers, "group.id": f"{prefix}reader",
        "enable.partition.eof": True, "enable.auto.commit": False,
    })
    meta = consumer.list_topics(timeout=10)
    parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics
             for p in meta.topics[t].partitions]
    consumer.assign(parts)  # no group coordination: read everything, every time
    pending = {(tp.topic, tp.partition) for tp in parts}
    got: list = []
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for m in consumer.consume(5000, timeout=0.5):
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(m.error().str())
                pending.discard((m.topic(), m.partition()))
                continue
            stream = m.topic().removeprefix(prefix)
            got.append((stream, m.value(), m.timestamp()[1]) if timestamps
                       else (stream, m.value()))
    consumer.close()
    if pending:
        raise RuntimeError(f"partitions not read to their end: {sorted(pending)}")
    return got
