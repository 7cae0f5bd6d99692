"""Which recovery partitions a cluster's store has, as marks on the broker.

Bytewax spreads a store over the processes' directories: on separate hosts each process
sees only its own partition files. The broker is what they all share, so each partition,
when it is created, leaves a mark on a one-partition compacted topic (`<prefix>recovery-store`,
keyed by partition): a process that finds its partition missing can tell "never made" from
"lost", and a process joining a grown cluster learns the store's partition and bucket counts.
"""

from __future__ import annotations

import time

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from .kafka_admin import create_topics


class StoreMark(msgspec.Struct, frozen=True, kw_only=True):
    """One recovery partition as it was created: where and when, and the store's shape."""

    partition: int
    partitions: int  # the store's partition count, fixed for its life
    buckets: int  # the ledger buckets the store was started with, fixed too
    created: str  # UTC, ISO 8601
    where: str  # host:directory
    # Messages the output topics held when the store was made: the same for every partition
    # of one store (nothing is written before all its processes have joined), so partitions
    # of two stores are told apart. -1: marked by a version that did not say.
    outputs_at: int = -1


_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(StoreMark).decode


def marks_topic(prefix: str) -> str:
    return f"{prefix}recovery-store"


def read_marks(brokers: str, prefix: str, client_config: dict[str, str] | None = None,
               timeout: float = 10.0) -> dict[int, StoreMark]:
    """partition -> its latest mark (none if the topic does not exist yet)."""
    topic = marks_topic(prefix)
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "stockflow-check",
                         "enable.partition.eof": True, "enable.auto.commit": False,
                         "fetch.wait.max.ms": 10, "log_level": 0, **(client_config or {})})
    marks: dict[int, StoreMark] = {}
    try:
        meta = consumer.list_topics(timeout=timeout)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            return marks
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.05)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return marks
                raise RuntimeError(f"cannot read {topic} on {brokers}: {msg.error().str()}")
            if msg.value() is None:  # forgotten (see write_marks)
                marks.pop(_partition_of(msg.key()), None)
                continue
            try:
                mark = _DECODE(msg.value())
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # not ours: a mark is only ever written below
            marks[mark.partition] = mark
        raise RuntimeError(f"cannot read {topic} on {brokers} to its end within {timeout} s")
    finally:
        consumer.close()


def _key(partition: int) -> bytes:
    return f"part-{partition}".encode()


def _partition_of(key: bytes | None) -> int:
    try:
        return int((key or b"").decode().removeprefix("part-"))
    except ValueError:
        return -1


def write_marks(brokers: str, prefix: str, marks: list[StoreMark],
                client_config: dict[str, str] | None = None, timeout: float = 10.0,
                forget: list[int] = ()) -> None:
    """Leaves `marks` on the broker, acknowledged (the topic is made if missing), and
    forgets the marks of partitions `forget` (tombstones)."""
    topic = marks_topic(prefix)  # `stockflow topics create` makes it too, with replication
    create_topics(brokers, {topic: 1}, client_config=client_config,
                  topic_config={"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": brokers, "acks": "all", "log_level": 0,
                         **(client_config or {})})
    failed: list[str] = []
    def delivered(err, _msg):
        if err is not None:
            failed.append(str(err))

    for mark in marks:
        producer.produce(topic, _ENCODE(mark), key=_key(mark.partition), partition=0,
                         on_delivery=delivered)
    for partition in forget:
        producer.produce(topic, None, key=_key(partition), partition=0, on_delivery=delivered)
    if producer.flush(timeout) != 0 or failed:
        raise RuntimeError(f"cannot write to {topic} on {brokers}: "
                           f"{failed[0] if failed else 'no acknowledgement'}")
