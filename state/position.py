"""One SKU at one node: supply, commitments, policy, and the ATP they leave."""

from __future__ import annotations

import msgspec

from .inbound import InboundSupply


class Position(msgspec.Struct, array_like=True, gc=False):  # gc=False: see inbound.py
    """Counts for one SKU at one node.

    supply = on hand + inbound; committed = held + allocated + reserved for transfers out.
    The engine's promise is committed <= supply at every node, after every event, and
    nothing committed where supply is below zero. On hand is a signed running sum: below zero it is a debt (the WMS shipped
    more than the engine knew of), which later receipts pay first.
    """

    on_hand: int = 0  # may be negative: a debt
    seq: int | None = None  # last applied snapshot seq; a snapshot not above it is stale
    inbound: InboundSupply | None = None  # None until some supply is announced here
    held: int = 0
    allocated: int = 0
    safety_stock: int = 0
    reorder_point: int | None = None
    order_up_to: int | None = None
    replenishing: bool = False  # a replenishment request is open: do not repeat it
    reported: bool = False  # some supply was reported here (a count, a change, an inbound)
    # Units reserved for transfers not yet shipped from here (transfers.py): committed like
    # holds, out of ATP. Last, so snapshots taken before it still restore.
    transfer_out: int = 0
    # Units of the lines held or allocated here that wait for inbound (a `promised` ETA), the
    # rest being promised from on hand now (`promises.py`). Last, as `transfer_out`.
    waiting: int = 0
    # Smart replenishment (smart_replenishment.py): units placed here per day, oldest first,
    # the last being day `demand_day` (days since the epoch); None while none were counted.
    demand_days: list[int] | None = None
    demand_day: int = 0
    # With the lead time learnt: purchases announced here and not received yet (supply id ->
    # when announced), and the lead time learnt from those received (ms).
    purchases: dict[str, int] | None = None
    lead_ms: int | None = None

    @property
    def inbound_qty(self) -> int:
        return self.inbound.total if self.inbound is not None else 0

    @property
    def supply(self) -> int:
        return self.on_hand + self.inbound_qty

    @property
    def committed(self) -> int:
        return self.held + self.allocated + self.transfer_out

    @property
    def over_committed(self) -> int:
        """Units committed beyond supply (0 when the promise holds). A debt is not supply
        that can be promised: where supply is below zero, every committed unit is over."""
        return max(0, self.committed - max(0, self.supply))

    def gives_now(self, kept_out: int = 0) -> int:
        """What on hand can give now: on hand less holds, allocations, transfer reserves and
        the units a quarantined lower count keeps out (`kept_out`, the book's). The one
        formula: placement, promise dates, transfer sources, explain and inspect use it.
        Below zero where lines wait for inbound, or under a debt."""
        return (self.on_hand - self.held - self.allocated - self.transfer_out - kept_out)

    def promise_ground(self, kept_out: int = 0) -> tuple:
        """What the promise dates here rest on: on hand left once the lines promised for now
        have theirs, and the inbound by ETA. Unchanged, no date can move later."""
        inbound = self.inbound
        arriving = () if inbound is None else tuple(sorted(
            (e.eta_ms, e.qty) for e in inbound.entries.values()))
        return (self.gives_now(kept_out) + self.waiting, arriving)

    def atp(self, until_ms: int) -> int:
        """Available to promise: on hand + inbound due by `until_ms` - holds - allocations
        - transfers reserved out - safety stock. Negative under a debt or a shortage; callers
        selling from it use max(0, atp), so one node's debt never lowers what other nodes
        can sell. A count the snapshot guard holds back lowers it further: that is the
        book's (`SkuBook.kept_out`)."""
        inbound = self.inbound
        if inbound is None:
            due = 0
        elif until_ms == inbound.until:
            due = inbound.due  # the horizon already reached: the usual case, inline
        else:
            due = inbound.due_by(until_ms)
        return self.atp_counting(due)

    def atp_counting(self, counted: int) -> int:
        """ATP counting `counted` units of inbound: those due by a horizon (`atp`), or what a
        channel's supply policy counts (`supply_policy.py`). The one formula."""
        # the fields, not `committed`: this is the hottest line of the engine
        return (self.on_hand + counted - self.held - self.allocated - self.transfer_out
                - self.safety_stock)

    def advance(self, until_ms: int) -> bool:
        """Move the ATP horizon forward; True if some inbound became due."""
        return self.inbound is not None and self.inbound.advance(until_ms)

    def advance_windows(self, clock_ms: int) -> bool:
        """Move the horizons of channels' supply policies forward; True if inbound became due."""
        return self.inbound is not None and self.inbound.advance_windows(clock_ms)

    def set_inbound(self, supply_id: str, qty: int, eta_ms: int, kind: str) -> int:
        """Announce, revise (qty > 0) or withdraw (qty == 0) a supply; returns its old qty."""
        if self.inbound is None:
            if not qty:
                return 0
            self.inbound = InboundSupply()
        return self.inbound.set(supply_id, qty, eta_ms, kind)

    def receive_inbound(self, supply_id: str, qty: int) -> None:
        """Units of an announced supply arrived: they leave inbound (on hand is the caller's)."""
        if self.inbound is not None:
            self.inbound.receive(supply_id, qty)
