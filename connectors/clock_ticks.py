"""Writing `clock.tick` events into input partitions, with stockflow's own producer.

A tick is recorded in Kafka like any input, so whatever it brings about (a hold expiring, the
merge of partitions moving on) happens at the same place when the topics are read again: in
a replay, after a restart, on another machine.
"""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec
from confluent_kafka import KafkaException, Producer

from stockflow.state.events import ClockTick

_ENCODE = msgspec.json.Encoder().encode


class ClockTicker:
    """Produces ticks stamped with wall time; fire and forget (a lost tick is followed by
    the next one), so the engine's loop never waits on it."""

    def __init__(self, brokers: str, client_config: dict[str, str] | None = None):
        self._config = {"bootstrap.servers": brokers, "linger.ms": 0, "log_level": 0,
                        **(client_config or {})}
        self._producer: Producer | None = None  # made on first use: most processes never tick

    def tick(self, partitions: list[str], now_ms: int) -> None:
        """One tick into each `topic:partition`, stamped `now_ms`."""
        if self._producer is None:
            self._producer = Producer(self._config)
        ts = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
        for part in partitions:
            topic, partition = part.rsplit(":", 1)
            value = _ENCODE(ClockTick(event_id=f"tick/{part}/{now_ms}", ts=ts))
            try:
                self._producer.produce(topic, value, partition=int(partition))
            except (BufferError, KafkaException):
                break  # the broker is away: the next tick tries again
        self._producer.poll(0)
