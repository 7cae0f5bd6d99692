"""Key names of the read model and the reservation API in Redis.

Everything about one SKU carries its hash tag `{sku}`, so a reservation or a settlement
touches one Redis Cluster slot.
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str = "sf") -> None:
        self.prefix = prefix
        self.heartbeat = f"{prefix}:heartbeat"
        self.stats = f"{prefix}:stats"  # reservation results, for metrics

    def mark(self, token: str) -> str:
        """One engine process's mark: gone means Redis lost what that process wrote."""
        return f"{self.prefix}:mark:{token}"

    def _of(self, sku: str, what: str) -> str:
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

    def hold(self, sku: str, order_line: str) -> str:
        """The mirror of one engine hold (`order/line`): node -> units, expiring with it."""
        return self._of(sku, f"hold:{order_line}")

    def reserve(self, sku: str) -> list[str]:
        return [self.avail(sku), self.max_line(sku), self.checkouts(sku),
                self.checkout_expiry(sku), self.busy(sku), self.pending(sku), self.heartbeat,
                self.stats]

    def release(self, sku: str) -> list[str]:
        return [self.checkouts(sku), self.checkout_expiry(sku), self.pending(sku)]

    def begin(self, sku: str) -> list[str]:
        return [self.checkouts(sku), self.checkout_expiry(sku), self.busy(sku), self.pending(sku)]

    def publish(self, sku: str) -> list[str]:
        return [self.avail(sku), self.max_line(sku), self.atp(sku), self.checkouts(sku),
                self.checkout_expiry(sku), self.busy(sku), self.pending(sku),
                self.position(sku)]
