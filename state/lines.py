"""An order line as the ledger of its SKU sees it: what it asked for and where it stands."""

from __future__ import annotations

import msgspec

# Where a line can stand. `held` and `allocated` lines own `parts` (node -> units) at nodes.
HELD = "held"
ALLOCATED = "allocated"
BACKORDERED = "backordered"
REJECTED = "rejected"
EXPIRED = "expired"
CANCELLED = "cancelled"
SHIPPED = "shipped"
RETURNED = "returned"

# States a payment revives: the line tries a fresh allocation.
REVIVABLE = frozenset({REJECTED, EXPIRED})
# States a cancellation still changes.
CANCELLABLE = frozenset({HELD, ALLOCATED, BACKORDERED, REJECTED, EXPIRED})


class Line(msgspec.Struct, array_like=True, gc=False):  # no cycles: see position.py
    order_id: str
    line_id: str
    qty: int
    channel: str
    region: str
    lat: float
    lon: float
    fulfillment: str
    pickup_node: str | None
    paid: bool
    seq: int  # input position of its order: FIFO order for backorders and shortage victims
    deadline_ms: int | None  # when an unpaid line's hold expires
    status: str = BACKORDERED
    parts: dict[str, int] = {}  # node -> units held or allocated (by `status`)
    shipped: int = 0
    # node -> ETA (ms) of the inbound supply its units there wait for, where on hand does not
    # cover them (`supply_policy.promise_date`); None for a line served from on hand
    promised: dict[str, int] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.order_id, self.line_id)

    @property
    def committed(self) -> int:
        return sum(self.parts.values())

    def promise(self, node: str, eta_ms: int | None) -> None:
        """Its units at `node` wait for inbound due at `eta_ms` (None: they are on hand)."""
        if eta_ms is not None:
            if self.promised is None:
                self.promised = {}
            self.promised[node] = eta_ms
        elif self.promised is not None:
            self.promised.pop(node, None)
            if not self.promised:
                self.promised = None


def unknown_line(order_id: str, line_id: str) -> Line:
    """A stand-in for a line the ledger never saw (shipped or returned outside the engine)."""
    return Line(
        order_id=order_id, line_id=line_id, qty=0, channel="", region="", lat=0.0, lon=0.0,
        fulfillment="ship", pickup_node=None, paid=True, seq=-1, deadline_ms=None,
    )
