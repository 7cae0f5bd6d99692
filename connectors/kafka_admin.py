"""Kafka topics of stockflow: their names, and creating them."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stockflow.state.outputs import INTAKE_JOURNAL, STREAMS

# In merge rank: when events of several inputs carry the same time, master data applies
# first, then stock, then orders.
INPUTS = ("master", "stock", "orders")


def input_topics(prefix: str = "stockflow.") -> list[str]:
    """The topics the engine reads, in merge rank: master data, stock, orders."""
    return [prefix + name for name in INPUTS]


def master_topic(prefix: str = "stockflow.") -> str:
    """Where nodes and channels come: few messages, one partition is plenty."""
    return prefix + INPUTS[0]


def output_topics(prefix: str = "stockflow.") -> list[str]:
    """The topics the engine writes: one per output stream."""
    return [prefix + stream for stream in STREAMS]


def journal_topic(prefix: str = "stockflow.") -> str:
    """Where the engine journals the checkout holds it takes in from Redis, for replays."""
    return prefix + INTAKE_JOURNAL


def create_topics(
    brokers: str,
    topics: dict[str, int] | list[str],
    partitions: int = 3,
    replication: int = 1,
    client_config: dict[str, str] | None = None,
    timeout: float = 15.0,
    topic_config: dict[str, str] | None = None,
) -> list[str]:
    """Creates the topics that do not exist yet; returns the names it created.

    `topics` maps names to partition counts, or lists names that get `partitions` each;
    `topic_config` (e.g. `cleanup.policy`) applies to every one created.
    """
    counts = topics if isinstance(topics, dict) else dict.fromkeys(topics, partitions)
    if not counts:
        return []
    missing_topics(brokers, [], client_config, timeout)  # no broker: one line, and soon
    # log_level 0: failures are said once, in the error below, not by librdkafka per retry.
    admin = AdminClient({"bootstrap.servers": brokers, "log_level": 0, **(client_config or {})})
    new = [NewTopic(name, n, replication, config=topic_config or {}) for name, n in counts.items()]
    created, failed = [], []
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                failed.append(f"{name}: {err.str()}")
    if failed:
        raise RuntimeError(f"cannot create kafka topics on {brokers}: " + "; ".join(failed))
    return created


def missing_topics(brokers: str, topics: list[str], client_config: dict[str, str] | None = None,
                   timeout: float = 10.0) -> list[str]:
    """The topics that do not exist; raises RuntimeError if the brokers cannot be reached."""
    # log_level 0: the error below says it once, instead of librdkafka on every retry.
    admin = AdminClient({"bootstrap.servers": brokers, "log_level": 0, **(client_config or {})})
    try:
        # Listing all topics, not by name: naming a topic can auto-create it.
        meta = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise RuntimeError(f"cannot reach Kafka at {brokers}: {exc.args[0].str()}") from None
    return [t for t in topics if t not in meta.topics]


def end_offsets(brokers: str, topics: list[str], client_config: dict[str, str] | None = None,
                timeout: float = 10.0) -> dict[str, tuple[int, int]]:
    """`topic:partition` -> (first, end) offsets of every partition of the existing `topics`."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "stockflow-check",
                         "log_level": 0, **(client_config or {})})
    try:
        meta = consumer.list_topics(timeout=timeout)
        ends = {}
        for topic in topics:
            found = meta.topics.get(topic)
            if found is None or found.error is not None:
                continue
            for p in sorted(found.partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                           timeout=timeout)
                ends[f"{topic}:{p}"] = (low, high)
        return ends
    except KafkaException as exc:
        raise RuntimeError(f"cannot reach Kafka at {brokers}: {exc.args[0].str()}") from None
    finally:
        consumer.close()


def holds_offset(brokers: str, part: str, offset: int,
                 client_config: dict[str, str] | None = None, timeout: float = 5.0) -> bool:
    """Whether `topic:partition` still has the message at `offset`, asked by fetching it
    (some Kafka-protocol brokers answer end-offset queries loosely; a fetch does not lie)."""
    topic, partition = part.rsplit(":", 1)
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "stockflow-check",
                         "enable.auto.commit": False, "auto.offset.reset": "error",
                         "log_level": 0, **(client_config or {})})
    try:
        consumer.assign([TopicPartition(topic, int(partition), offset)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                return False  # out of range: the broker no longer has it
            return msg.offset() == offset
        return False
    finally:
        consumer.close()
