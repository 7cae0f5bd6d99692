"""Reading the engine's read model back from Redis, for operators (`stockflow inspect`, the
HTTP API): one pipeline per question, never a write."""

from __future__ import annotations

import time

import msgspec
import redis

from stockflow.state.node_position import NodePosition, SkuReport

from .redis_connect import is_cluster
from .redis_keys import Keys

_DECODE_POSITION = msgspec.msgpack.Decoder(NodePosition).decode


class ReadModelReader:
    def __init__(self, client: redis.Redis, prefix: str = "sf", stale_after_s: float = 5.0):
        self.client = client
        self.keys = Keys(prefix, cluster=is_cluster(client))
        self.stale_after_ms = int(stale_after_s * 1000)

    def sku(self, sku: str) -> SkuReport | None:
        """What Redis holds of `sku`; None if the engine never published it."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.avail(sku))
        pipe.hgetall(self.keys.max_line(sku))
        pipe.hgetall(self.keys.position(sku))
        pipe.get(self.keys.pending(sku))
        avail, line, positions, pending = pipe.execute()
        if not avail and not positions:
            return None
        return SkuReport(
            sku=sku,
            available=_counts(avail),
            max_line_qty=_counts(line),
            positions={_text(node): _DECODE_POSITION(blob)
                       for node, blob in sorted(positions.items())},
            checkout_pending=int(pending or 0),
        )

    def heartbeat_age_ms(self) -> int | None:
        """Milliseconds since the engine last wrote its heartbeat (negative if this host's
        clock is behind the engine's); None if there is none. On a cluster, the oldest of the
        groups' heartbeats: the one reservations of some SKUs check."""
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys.heartbeats:
            pipe.get(key)
        found = pipe.execute()
        if any(raw is None for raw in found):
            return None
        # each holds "fresh until" = written + stale
        written_ms = min(int(raw) for raw in found) - self.stale_after_ms
        return int(time.time() * 1000) - written_ms


def _counts(flat: dict) -> dict[str, int]:
    return {_text(k): int(v) for k, v in sorted(flat.items())}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
