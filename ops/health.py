"""Is the engine keeping up? Its heartbeat in Redis, and, where the engine runs, how far each
input partition is behind the broker's end and when state was last snapshotted."""

from __future__ import annotations

from pathlib import Path

import redis

from stockflow.connectors import recovery_store
from stockflow.connectors.kafka_admin import end_offsets, input_topics
from stockflow.connectors.read_model_reader import ReadModelReader

from .config import KafkaSettings


class EngineHealth:
    """Answers /v1/health. Without `kafka` and `recovery_dir` (the standalone API, which reads
    Redis only) it says the heartbeat alone."""

    def __init__(self, reader: ReadModelReader, kafka: KafkaSettings | None = None,
                 recovery_dir: str | None = None, source_step: str = ""):
        self.reader = reader
        self.kafka = kafka
        self.recovery_dir = Path(recovery_dir) if recovery_dir else None
        self.source_step = source_step

    def report(self) -> tuple[bool, dict]:
        """(fresh, the figures): fresh while the heartbeat is younger than the stale limit
        reservations use."""
        body: dict = {}
        fresh = False
        try:
            age_ms = self.reader.heartbeat_age_ms()
        except redis.RedisError as exc:
            body["heartbeat"] = {"error": f"cannot read Redis: {exc}"}
        else:
            fresh = age_ms is not None and age_ms <= self.reader.stale_after_ms
            body["heartbeat"] = {
                "age_s": None if age_ms is None else round(age_ms / 1000, 3),
                "stale_after_s": self.reader.stale_after_ms / 1000, "fresh": fresh}
        if self.kafka is not None and self.recovery_dir is not None:
            body["input_lag"] = self._lag()
            body["last_snapshot"] = self._snapshot()
        return fresh, body

    def _lag(self) -> dict:
        """topic:partition -> messages between the offset the recovery store holds and the
        partition's end: what a restart now would read again or for the first time."""
        k = self.kafka
        try:
            ends = end_offsets(k.brokers, input_topics(k.topic_prefix), k.client, timeout=5.0)
        except RuntimeError as exc:
            return {"error": str(exc)}
        stored = recovery_store.stored_offsets(self.recovery_dir, self.source_step)
        return {part: max(0, high - stored.get(part, low))
                for part, (low, high) in sorted(ends.items())}

    def _snapshot(self) -> dict | None:
        newest = recovery_store.last_snapshot(self.recovery_dir)
        if newest is None:
            return None
        epoch, at = newest
        # Bytewax snapshots at the end of an epoch and a restart resumes at the start of the
        # next: `resume_epoch` is the epoch a restart now would log (`event=resume epoch=`).
        resume = recovery_store.resume_point(self.recovery_dir, self.source_step).epoch
        return {"at": at.replace(" ", "T") + "Z", "epoch": epoch, "resume_epoch": resume}
