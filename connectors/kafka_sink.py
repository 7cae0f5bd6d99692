"""Kafka output: `(stream, [json bytes])` items to the topic `<prefix><stream>`, keyed."""

from __future__ import annotations

import logging
import time
from typing import Callable

import msgspec
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, Producer

log = logging.getLogger(__name__)

# (stream, value) -> message key, or None to let the producer pick the partition.
KeyOf = Callable[[str, bytes], bytes | None]

PRODUCER_DEFAULTS = {
    # Retries cannot duplicate or reorder messages within a partition.
    "enable.idempotence": "true",
    "acks": "all",
    "linger.ms": "5",
    "compression.type": "lz4",
}


# How long one batch may wait for the broker's acknowledgements before the sink gives up.
DELIVERY_TIMEOUT_S = 30.0
# Waits on the producer last at most this long each, so signals are handled promptly.
WAIT_SLICE_S = 0.1
# Delivery reports of messages `purge()` dropped on purpose.
_PURGED = (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)


class _Keys(msgspec.Struct):
    order_id: str | None = None
    sku: str | None = None


_DECODE_KEYS = msgspec.json.Decoder(_Keys).decode

# Each stream is keyed by what its consumers need in order: an order's lines, a SKU's
# commands and levels. Dead letters have no natural key.
_KEY_FIELD = {
    "order-status": "order_id",
    "dispatch": "sku",
    "availability": "sku",
    "replenishment": "sku",
    "alerts": "sku",
}


def key_of_output(stream: str, value: bytes) -> bytes | None:
    """The message key of one output: its `order_id` or `sku`, by stream; else None."""
    field = _KEY_FIELD.get(stream)
    if field is None:
        return None
    try:
        key = getattr(_DECODE_KEYS(value), field)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None  # our encoder wrote it; an odd value still goes out, unkeyed
    return None if key is None else key.encode()


class KafkaSinkError(RuntimeError):
    """Outputs the broker did not take: the flow fails, and its next start resumes from the
    last snapshot, so they are written again."""


class KafkaStreamPartition(StatelessSinkPartition[tuple[str, list[bytes]]]):
    """One producer; every batch is on the broker, or has raised, when `write_batch` returns."""

    def __init__(self, producer: Producer, topic_prefix: str, key_of: KeyOf, brokers: str,
                 delivery_timeout_s: float = DELIVERY_TIMEOUT_S):
        self._producer = producer
        self._prefix = topic_prefix
        self._key_of = key_of
        self._brokers = brokers
        self._timeout = delivery_timeout_s
        self._failed: tuple[str, KafkaError] | None = None
        self._failures = 0
        self._unacked = 0  # messages of the current batch the broker has not acknowledged

    def _on_delivery(self, err: KafkaError | None, msg) -> None:
        if err is None:
            self._unacked -= 1
            return
        if err.code() in _PURGED:
            return  # dropped by `_discard`: the restart writes them again
        self._failures += 1
        if self._failed is None:
            self._failed = (msg.topic(), err)

    def write_batch(self, items: list[tuple[str, list[bytes]]]) -> None:
        produce, key_of, on_delivery = self._producer.produce, self._key_of, self._on_delivery
        deadline = time.monotonic() + self._timeout
        self._unacked = sum(len(values) for _, values in items)
        for stream, values in items:
            topic = self._prefix + stream
            for value in values:
                key = key_of(stream, value)
                while True:
                    try:
                        produce(topic, value=value, key=key, on_delivery=on_delivery)
                        break
                    except BufferError:  # local queue full: wait for deliveries to drain it
                        self._wait(deadline)
        # Bytewax snapshots after an epoch's writes return: flushing here makes outputs
        # durable before the input offsets that produced them are recorded.
        self._flush(deadline)
        self._raise_if_failed()

    def _wait(self, deadline: float) -> None:
        if time.monotonic() >= deadline:
            self._give_up()
        self._producer.poll(WAIT_SLICE_S)

    def _flush(self, deadline: float) -> None:
        # Short slices: a signal handler's exception (live mode turns SIGTERM into
        # KeyboardInterrupt) is raised between them instead of after a long wait.
        while self._producer.flush(WAIT_SLICE_S) > 0:
            if time.monotonic() >= deadline:
                self._give_up()

    def _give_up(self) -> None:
        lost = self._unacked
        self._discard()
        log.error("delivery_failed", extra={
            "brokers": self._brokers, "undelivered": lost, "timeout_s": self._timeout,
            "error": "not acknowledged in time", "next": "the flow stops; the next start "
                                                         "resumes from the last snapshot"})
        raise KafkaSinkError(
            f"kafka broker {self._brokers} did not acknowledge {lost} message(s) within "
            f"{self._timeout:g} s (unreachable or not answering); the flow stops, and its next "
            "start resumes from the last snapshot and writes them again")

    def _raise_if_failed(self) -> None:
        if self._failed is None:
            return
        (topic, err), failures = self._failed, self._failures
        self._failed, self._failures = None, 0
        log.error("delivery_failed", extra={
            "brokers": self._brokers, "topic": topic, "undelivered": failures,
            "error": err.str(), "next": "the flow stops; the next start resumes from the "
                                        "last snapshot"})
        # librdkafka retries what can be retried; a failed report means it gave up.
        # Raising restarts the flow from its last snapshot instead of losing a command.
        raise KafkaSinkError(
            f"kafka delivery failed for topic {topic} on {self._brokers}: {err.str()} "
            f"({failures} message(s) not delivered); the flow stops, and its next start "
            "resumes from the last snapshot and writes them again")

    def _discard(self) -> None:
        # What is still queued belongs to a batch that did not complete, which the restart
        # writes again: dropping it stops retries and lets the producer close at once.
        self._producer.purge()
        self._producer.poll(0)
        self._failed, self._failures = None, 0

    def close(self) -> None:
        # Every batch that returned was flushed; anything left is from one that raised.
        self._discard()


class KafkaStreamSink(DynamicSink[tuple[str, list[bytes]]]):
    """Writes `(stream, [json bytes, ...])` items to Kafka topic `<topic_prefix><stream>`.

    Keys come from `key_of(stream, value)`; by default the output's `order_id` or `sku`.
    A batch the broker has not acknowledged within `delivery_timeout_s` seconds (default
    30) fails the flow with a `KafkaSinkError` naming the broker and the messages not
    delivered; the next start resumes from the last snapshot, so outputs stay at least once.
    librdkafka's own `message.timeout.ms` (5 min by default) still fails single messages.
    """

    def __init__(
        self,
        brokers: str,
        topic_prefix: str = "stockflow.",
        client_config: dict[str, str] | None = None,
        key_of: KeyOf | None = None,
        delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
    ):
        if not delivery_timeout_s > 0:
            raise ValueError(f"delivery_timeout_s must be > 0, not {delivery_timeout_s!r}")
        self.brokers = brokers
        self.topic_prefix = topic_prefix
        self.client_config = dict(client_config or {})
        self.key_of = key_of or key_of_output
        self.delivery_timeout_s = delivery_timeout_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> KafkaStreamPartition:
        config = {"bootstrap.servers": self.brokers, **PRODUCER_DEFAULTS, **self.client_config}
        return KafkaStreamPartition(Producer(config), self.topic_prefix, self.key_of,
                                    self.brokers, self.delivery_timeout_s)
