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

    @property
    def inbound_qty(self) -> int:
        return sum(i.qty for i in self.inbound.values()) if self.inbound else 0

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
        eligible = 0
        if self.inbound:
            eligible = sum(i.qty for i in self.inbound.values() if i.eta_ms <= until_ms)
        return self.on_hand + eligible - self.held - self.allocated - self.safety_stock
