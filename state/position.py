"""One SKU at one node: supply, commitments, policy, and the ATP they leave."""

from __future__ import annotations

import msgspec


class Inbound(msgspec.Struct, array_like=True):
    """Future supply announced under one `supply_id`."""

    qty: int
    eta_ms: int
    kind: str


class Position(msgspec.Struct, array_like=True):
    """Counts for one SKU at one node.

    supply = on hand + inbound; committed = held + allocated. The engine's promise is
    committed <= supply at every node, after every event.

    Inbound totals are kept incrementally (`inbound_qty`, and `due_qty` for the inbound due by
    `due_until`) so that ATP costs the same however many supplies a position has announced;
    only an ETA crossing the horizon, or a query behind it, walks the inbound entries.
    """

    on_hand: int = 0
    seq: int | None = None  # last applied snapshot seq; a snapshot not above it is stale
    inbound: dict[str, Inbound] = {}
    held: int = 0
    allocated: int = 0
    safety_stock: int = 0
    reorder_point: int | None = None
    order_up_to: int | None = None
    replenishing: bool = False  # a replenishment request is open: do not repeat it
    reported: bool = False  # some supply was reported here (a count, a change, an inbound)
    inbound_qty: int = 0  # sum of all inbound
    due_qty: int = 0  # sum of inbound with eta <= due_until
    due_until: int = 0
    next_eta: int | None = None  # earliest eta after due_until, None if there is none

    @property
    def supply(self) -> int:
        return self.on_hand + self.inbound_qty

    @property
    def committed(self) -> int:
        return self.held + self.allocated

    @property
    def over_committed(self) -> int:
        """Units committed beyond supply (0 when the promise holds)."""
        return max(0, self.held + self.allocated - self.supply)

    def atp(self, until_ms: int) -> int:
        """Available to promise: on hand + inbound due by `until_ms` - holds - allocations
        - safety stock. May be negative; callers selling from it use max(0, atp)."""
        if until_ms >= self.due_until:
            self.advance(until_ms)
            due = self.due_qty
        else:  # a query behind the horizon already reached (another input's slower clock)
            due = sum(i.qty for i in self.inbound.values() if i.eta_ms <= until_ms)
        return self.on_hand + due - self.held - self.allocated - self.safety_stock

    def advance(self, until_ms: int) -> bool:
        """Move the horizon forward to `until_ms`; True if some inbound became due."""
        if until_ms <= self.due_until:
            return False
        self.due_until = until_ms
        if self.next_eta is None or self.next_eta > until_ms:
            return False
        self._recount()
        return True

    # -- inbound: every change goes through these two --------------------------------------

    def set_inbound(self, supply_id: str, qty: int, eta_ms: int, kind: str) -> int:
        """Announce, revise (qty > 0) or withdraw (qty == 0) a supply; returns its old qty."""
        old = self.inbound.pop(supply_id, None)
        if old is not None:
            self._count(old, -old.qty)
        if qty:
            entry = self.inbound[supply_id] = Inbound(qty, eta_ms, kind)
            self._count(entry, qty)
        return 0 if old is None else old.qty

    def receive_inbound(self, supply_id: str, qty: int) -> None:
        """Units of an announced supply arrived: they leave inbound (on hand is the caller's)."""
        entry = self.inbound.get(supply_id)
        if entry is None:
            return
        taken = min(qty, entry.qty)
        entry.qty -= taken
        self._count(entry, -taken)
        if entry.qty == 0:
            del self.inbound[supply_id]
            if entry.eta_ms == self.next_eta:
                self._recount()

    def _count(self, entry: Inbound, delta: int) -> None:
        self.inbound_qty += delta
        if entry.eta_ms <= self.due_until:
            self.due_qty += delta
        elif delta > 0:
            if self.next_eta is None or entry.eta_ms < self.next_eta:
                self.next_eta = entry.eta_ms
        elif entry.eta_ms == self.next_eta:
            self._recount()

    def _recount(self) -> None:
        due, later = 0, None
        for entry in self.inbound.values():
            if entry.eta_ms <= self.due_until:
                due += entry.qty
            elif later is None or entry.eta_ms < later:
                later = entry.eta_ms
        self.due_qty, self.next_eta = due, later
