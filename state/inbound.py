"""Future supply at one position: entries by `supply_id`, with totals kept incrementally.

`total` is all inbound; `due` is the inbound whose ETA is at or before `until` (the ATP
horizon last asked for), so ATP costs the same however many supplies a node announced; only
an ETA crossing the horizon, or a question behind it, walks the entries.
"""

from __future__ import annotations

import msgspec


# gc=False here and on the other state structs: they hold no references back, and there are
# millions of them; leaving them out of the cycle collector saves memory and collection time.
class Inbound(msgspec.Struct, array_like=True, gc=False):
    """Future supply announced under one `supply_id`."""

    qty: int
    eta_ms: int
    kind: str


class InboundSupply(msgspec.Struct, array_like=True, gc=False):
    entries: dict[str, Inbound] = {}
    total: int = 0
    due: int = 0  # sum of entries with eta <= until
    until: int = 0
    next_eta: int | None = None  # earliest eta after `until`, None if there is none

    def due_by(self, until_ms: int) -> int:
        """Inbound due by `until_ms`."""
        if until_ms >= self.until:
            self.advance(until_ms)
            return self.due
        # a question behind the horizon already reached (another input's slower clock)
        return sum(i.qty for i in self.entries.values() if i.eta_ms <= until_ms)

    def advance(self, until_ms: int) -> bool:
        """Move the horizon forward to `until_ms`; True if some inbound became due."""
        if until_ms <= self.until:
            return False
        self.until = until_ms
        if self.next_eta is None or self.next_eta > until_ms:
            return False
        self._recount()
        return True

    def set(self, supply_id: str, qty: int, eta_ms: int, kind: str) -> int:
        """Announce, revise (qty > 0) or withdraw (qty == 0) a supply; returns its old qty."""
        old = self.entries.pop(supply_id, None)
        if old is not None:
            self._count(old, -old.qty)
        if qty:
            entry = self.entries[supply_id] = Inbound(qty, eta_ms, kind)
            self._count(entry, qty)
        return 0 if old is None else old.qty

    def receive(self, supply_id: str, qty: int) -> None:
        """Units of a supply arrived: they leave inbound."""
        entry = self.entries.get(supply_id)
        if entry is None:
            return
        taken = min(qty, entry.qty)
        entry.qty -= taken
        self._count(entry, -taken)
        if entry.qty == 0:
            del self.entries[supply_id]
            if entry.eta_ms == self.next_eta:
                self._recount()

    def _count(self, entry: Inbound, delta: int) -> None:
        self.total += delta
        if entry.eta_ms <= self.until:
            self.due += delta
        elif delta > 0:
            if self.next_eta is None or entry.eta_ms < self.next_eta:
                self.next_eta = entry.eta_ms
        elif entry.eta_ms == self.next_eta:
            self._recount()

    def _recount(self) -> None:
        due, later = 0, None
        for entry in self.entries.values():
            if entry.eta_ms <= self.until:
                due += entry.qty
            elif later is None or entry.eta_ms < later:
                later = entry.eta_ms
        self.due, self.next_eta = due, later
