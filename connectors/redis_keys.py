"""Key names of the read model and the reservation API in Redis.

A reservation reads the SKU's keys, the engine's heartbeat (is the picture fresh?) and bumps a
counter (for metrics), all in one Redis Function call; a settlement (begin, publish) touches
the SKU's keys. On Redis Cluster every key of one call must live in one hash slot, so the
layout has two shapes:

- one Redis (`cluster=False`): every key of a SKU carries the SKU's hash tag
  (`sf:{SKU-1}:avail`) and the heartbeat and counters are single keys (`sf:heartbeat`,
  `sf:stats`), so the engine writes the heartbeat once per beat, as it always has;
- Redis Cluster (`cluster=True`): SKUs map to `GROUPS` slot groups (crc32 of the SKU), and a
  SKU's keys carry its group's hash tag instead of the SKU (`sf:{g7.11}:SKU-1:avail`). Each
  group has its own heartbeat, counters and engine marks (`sf:{g7.11}:heartbeat`), so
  reserve's stale-engine check reads a heartbeat in its own slot. The engine writes all
  `GROUPS` heartbeats per beat (one pipelined SET each, a few dozen small keys every 0.5 s);
  a publish refreshes only the groups of its SKUs; metrics sum the groups' counters.

We chose heartbeat copies over an engine epoch inside each SKU's hash: an epoch would have to
be rewritten into every SKU on each beat, while copies cost a fixed number of keys. A group's
tag is picked so that group i's slot lies in the i-th of `GROUPS` equal slot ranges: clusters
made by `redis-cli --cluster create` (contiguous, equal ranges per primary) get their groups
spread evenly over up to `GROUPS` primaries. The layout is fixed for the life of the data: a
different `GROUPS` is a different key space.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

GROUPS = 32  # slot groups on Redis Cluster: heartbeat copies written per beat


@lru_cache(maxsize=None)
def group_tags(groups: int = GROUPS) -> tuple[str, ...]:
    """One hash tag per group, group i's slot in the i-th of `groups` equal slot ranges."""
    tags, slots = [], REDIS_CLUSTER_HASH_SLOTS
    for i in range(groups):
        low, high = i * slots // groups, (i + 1) * slots // groups
        n = 0
        while not low <= key_slot(f"g{i}.{n}".encode()) < high:
            n += 1
        tags.append(f"g{i}.{n}")
    return tuple(tags)


class Keys:
    def __init__(self, prefix: str = "sf", cluster: bool = False) -> None:
        self.prefix = prefix
        self.cluster = cluster
        self._tags = group_tags() if cluster else ()
        # Every copy of the heartbeat and of the reservation results (metrics sum them).
        if cluster:
            self.heartbeats = tuple(f"{prefix}:{{{t}}}:heartbeat" for t in self._tags)
            self.stats = tuple(f"{prefix}:{{{t}}}:stats" for t in self._tags)
            self.dues = tuple(f"{prefix}:{{{t}}}:ckdue" for t in self._tags)
            self.wokens = tuple(f"{prefix}:{{{t}}}:ckwoken" for t in self._tags)
            self.intake_at = f"{prefix}:{{{self._tags[0]}}}:intake-at"
        else:
            self.heartbeats = (f"{prefix}:heartbeat",)
            self.stats = (f"{prefix}:stats",)
            self.dues = (f"{prefix}:ckdue",)
            self.wokens = (f"{prefix}:ckwoken",)
            self.intake_at = f"{prefix}:intake-at"

    def _group(self, sku: str) -> int:
        return zlib.crc32(sku.encode()) % len(self._tags)

    def heartbeat_of(self, sku: str) -> str:
        """The heartbeat a reservation of `sku` checks."""
        return self.heartbeats[self._group(sku)] if self.cluster else self.heartbeats[0]

    def stats_of(self, sku: str) -> str:
        """Where a reservation of `sku` counts its result."""
        return self.stats[self._group(sku)] if self.cluster else self.stats[0]

    def due_of(self, sku: str) -> str:
        """The set of SKUs due to be taken in that `sku` joins after a grant or a release."""
        return self.dues[self._group(sku)] if self.cluster else self.dues[0]

    def woken_of(self, sku: str) -> str:
        """Where the intakes of `sku` at odd positions are noted, with every SKU of its group."""
        return self.wokens[self._group(sku)] if self.cluster else self.wokens[0]

    def heartbeats_of(self, skus) -> list[str]:
        """The heartbeats reservations of these SKUs check (the only one on one Redis)."""
        if not self.cluster:
            return [self.heartbeats[0]]
        return [self.heartbeats[g] for g in sorted({self._group(sku) for sku in skus})]

    def marks(self, token: str) -> list[str]:
        """One engine process's marks (one per group on a cluster, so every primary holds
        one): a missing mark means Redis lost what that process wrote."""
        if not self.cluster:
            return [f"{self.prefix}:mark:{token}"]
        return [f"{self.prefix}:{{{t}}}:mark:{token}" for t in self._tags]

    def _of(self, sku: str, what: str) -> str:
        if self.cluster:
            return f"{self.prefix}:{{{self._tags[self._group(sku)]}}}:{sku}:{what}"
        return f"{self.prefix}:{{{sku}}}:{what}"

    def avail(self, sku: str) -> str:
        return self._of(sku, "avail")

    def max_line(self, sku: str) -> str:
        """channel -> the most one order line can be promised (`max_line_qty`)."""
        return self._of(sku, "line")

    def atp(self, sku: str) -> str:
        return self._of(sku, "atp")

    def position(self, sku: str) -> str:
        """node -> the counts behind its ATP (a msgpack-encoded `NodePosition`)."""
        return self._of(sku, "pos")

    def checkouts(self, sku: str) -> str:
        return self._of(sku, "ck")

    def checkout_expiry(self, sku: str) -> str:
        return self._of(sku, "ckx")

    def busy(self, sku: str) -> str:
        return self._of(sku, "busy")

    def pending(self, sku: str) -> str:
        return self._of(sku, "pend")

    def released(self, sku: str) -> str:
        """hold_ids released since the engine last took the SKU's holds in."""
        return self._of(sku, "ckr")

    def intake(self, sku: str) -> str:
        """The hold set the engine last took in, and how many intakes it made."""
        return self._of(sku, "ckt")

    def intake_log(self, sku: str) -> str:
        """What the engine took in, and where in its merged input."""
        return self._of(sku, "ckl")

    def hold(self, sku: str, order_line: str) -> str:
        """The mirror of one engine hold (`order/line`): node -> units, expiring with it."""
        return self._of(sku, f"hold:{order_line}")

    def reserve(self, sku: str) -> list[str]:
        return [self.avail(sku), self.max_line(sku), self.checkouts(sku),
                self.checkout_expiry(sku), self.busy(sku), self.pending(sku),
                self.heartbeat_of(sku), self.stats_of(sku), self.due_of(sku)]

    def release(self, sku: str) -> list[str]:
        return [self.checkouts(sku), self.checkout_expiry(sku), self.pending(sku),
                self.released(sku), self.due_of(sku)]

    def begin(self, sku: str) -> list[str]:
        return [self.checkouts(sku), self.checkout_expiry(sku), self.busy(sku), self.pending(sku),
                self.intake(sku), self.intake_log(sku), self.released(sku), self.due_of(sku),
                self.woken_of(sku)]

    def publish(self, sku: str) -> list[str]:
        return [self.avail(sku), self.max_line(sku), self.atp(sku), self.checkouts(sku),
                self.checkout_expiry(sku), self.busy(sku), self.pending(sku),
                self.position(sku)]
