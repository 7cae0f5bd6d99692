"""Units on hand over event time, as the input says: what the summary's `mean_units_on_hand`
and `inventory_turns` are measured on.

On hand per SKU x node follows the contract's arithmetic: a count newer than the last one
(`seq`) sets it; adjustments, receipts, shipments, shipped transfers (at their source) and
restocked returns move it. A debt (below zero) counts as none. The mean is weighted by how
long each level lasted, from the first event's time to the last (the clock: a late event
changes the level from the clock's time on, never before).
"""

from __future__ import annotations

from stockflow.state.events import (
    OrderReturned,
    ShipmentConfirmed,
    StockAdjusted,
    StockSnapshot,
    SupplyReceived,
    TransferShipped,
    epoch_ms,
)

YEAR_MS = 365 * 86400 * 1000


class StockOnHand:
    def __init__(self) -> None:
        self.on_hand: dict[tuple[str, str], int] = {}
        self.seq: dict[tuple[str, str], int] = {}
        self.units = 0  # sum over SKU x nodes of on hand above zero
        self.first_ms: int | None = None
        self.clock_ms = 0
        self.unit_ms = 0  # units on hand x milliseconds, so far
        self.shipped = 0  # units shipped to customers

    def apply(self, ev) -> None:
        """One well-formed, not duplicate, input event."""
        ts_ms = epoch_ms(ev.ts)
        if self.first_ms is None:
            self.first_ms = self.clock_ms = ts_ms
        elif ts_ms > self.clock_ms:
            self.unit_ms += self.units * (ts_ms - self.clock_ms)
            self.clock_ms = ts_ms
        t = type(ev)
        if t is StockSnapshot:
            key = (ev.sku, ev.node)
            if key not in self.seq or ev.seq > self.seq[key]:
                self.seq[key] = ev.seq
                self._set(key, ev.on_hand)
        elif t is StockAdjusted:
            self._move(ev.sku, ev.node, ev.delta)
        elif t is SupplyReceived:
            self._move(ev.sku, ev.node, ev.qty)
        elif t is ShipmentConfirmed:
            self._move(ev.sku, ev.node, -ev.qty)
            self.shipped += ev.qty
        elif t is TransferShipped:
            self._move(ev.sku, ev.from_node, -ev.qty)
        elif t is OrderReturned and ev.restock:
            self._move(ev.sku, ev.node, ev.qty)

    def _move(self, sku: str, node: str, delta: int) -> None:
        key = (sku, node)
        self._set(key, self.on_hand.get(key, 0) + delta)

    def _set(self, key: tuple[str, str], value: int) -> None:
        self.units += max(0, value) - max(0, self.on_hand.get(key, 0))
        self.on_hand[key] = value

    @property
    def span_ms(self) -> int:
        return 0 if self.first_ms is None else self.clock_ms - self.first_ms

    @property
    def mean_units(self) -> float:
        """Time-weighted mean units on hand, all nodes (the level at the end where no time
        passed)."""
        return self.unit_ms / self.span_ms if self.span_ms else float(self.units)

    @property
    def turns(self) -> float:
        """Units shipped per mean unit on hand, per year of event time."""
        if not self.span_ms or not self.mean_units:
            return 0.0
        return self.shipped / self.mean_units * YEAR_MS / self.span_ms
