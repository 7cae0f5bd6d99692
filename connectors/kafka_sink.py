"""Kafka output: `(stream, [json bytes])` items to the topic `<prefix><stream>`, keyed."""

from __future__ import annotations

from typing import Callable

import msgspec
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, Producer

# (stream, value) -> message key, or None to let the producer pick the partition.
KeyOf = Callable[[str, bytes], bytes | None]

PRODUCER_DEFAULTS = {
    # Retries cannot duplicate or reorder messages within a partition.
    "enable.idempotence": "true",
    "acks": "all",
    "linger.ms": "5",
    "compression.type": "lz4",
}


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


class KafkaStreamPartition(StatelessSinkPartition[tuple[str, list[bytes]]]):
    """One producer; every batch is on the broker, or has raised, when `write_batch` returns."""

    def __init__(self, producer: Producer, topic_prefix: str, key_of: KeyOf):
        self._producer = producer
        self._prefix = topic_prefix
        self._key_of = key_of
        self._failed: tuple[str, KafkaError] | None = None

    def _on_delivery(self, err: KafkaError | None, msg) -> None:
        if err is not None and self._failed is None:
            self._failed = (msg.topic(), err)

    def write_batch(self, items: list[tuple[str, list[bytes]]]) -> None:
        produce, key_of = self._producer.produce, self._key_of
        for stream, values in items:
            topic = self._prefix + stream
            for value in values:
                key = key_of(stream, value)
                while True:
                    try:
                        produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                        break
                    except BufferError:  # local queue full: wait for deliveries to drain it
                        self._producer.poll(0.1)
        # Bytewax snapshots after an epoch's writes return: flushing here makes outputs
        # durable before the input offsets that produced them are recorded.
        while self._producer.flush(1.0) > 0:
            pass
        if self._failed is not None:
            (topic, err), self._failed = self._failed, None
            # librdkafka retries what can be retried; a failed report means it gave up.
            # Raising restarts the flow from its last snapshot instead of losing a command.
            raise RuntimeError(f"kafka delivery failed for topic {topic}: {err.str()}")

    def close(self) -> None:
        self._producer.flush()


class KafkaStreamSink(DynamicSink[tuple[str, list[bytes]]]):
    """Writes `(stream, [json bytes, ...])` items to Kafka topic `<topic_prefix><stream>`.

    Keys come from `key_of(stream, value)`; by default the output's `order_id` or `sku`.
    """

    def __init__(
        self,
        brokers: str,
        topic_prefix: str = "stockflow.",
        client_config: dict[str, str] | None = None,
        key_of: KeyOf | None = None,
    ):
        self.brokers = brokers
        self.topic_prefix = topic_prefix
        self.client_config = dict(client_config or {})
        self.key_of = key_of or key_of_output

    def build(self, step_id: str, worker_index: int, worker_count: int) -> KafkaStreamPartition:
        config = {"bootstrap.servers": self.brokers, **PRODUCER_DEFAULTS, **self.client_config}
        return KafkaStreamPartition(Producer(config), self.topic_prefix, self.key_of)
