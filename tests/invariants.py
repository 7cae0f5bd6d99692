"""The contract's promise, checked from the outside: input events and outputs only.

`Auditor` rebuilds supply per SKU and node from the inputs, and commitments per order line
from the outputs (held statuses, dispatch.allocate / dispatch.release, shipments), then checks
after every input event and the outputs it caused:
- no node has holds + allocations - shipments above on hand + inbound supply, and none at all
  where that supply is below zero: on hand is a signed running sum (adjustments, shipments,
  receipts, restocked returns; a newer snapshot sets it), and a debt is never promised;
- an adjustment or shipment that leaves on hand below zero is said as an `alert` (drift);
- the `held` statuses one input event gives a line are its whole set of holds from then on:
  at most one per node, and no other status of the line after them under that event;
- no line has more units committed than it asked for, nor a negative allocation;
and, over a whole run: every order line ended with a status, command ids are unique, every
output names a cause that was an input. The same checks serve the replay, dataflow and live tests.
"""

from __future__ import annotations

from collections import defaultdict

from stockflow.state.events import (
    OrderCreated,
    OrderReturned,
    ShipmentConfirmed,
    StockAdjusted,
    StockSnapshot,
    SupplyInbound,
    SupplyReceived,
)
from stockflow.state.outputs import (
    Alert,
    DeadLetter,
    DispatchAllocate,
    DispatchRelease,
    OrderStatus,
)

LineKey = tuple[str, str]
SkuNode = tuple[str, str]


class PromiseBroken(AssertionError):
    pass


class Auditor:
    def __init__(self, event_by_event: bool = True) -> None:
        # Whether outputs are applied right after their cause (then a debt's drift alert is
        # checked), or after all the inputs (several partitions: only end states compare).
        self.event_by_event = event_by_event
        self.on_hand: dict[SkuNode, int] = defaultdict(int)  # signed: below zero is a debt
        self.seq: dict[SkuNode, int] = {}
        self.inbound: dict[SkuNode, dict[str, int]] = defaultdict(dict)
        self.holds: dict[LineKey, dict[str, int]] = defaultdict(dict)
        self.allocs: dict[LineKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.line_sku: dict[LineKey, str] = {}
        self.line_qty: dict[LineKey, int] = {}
        self.orders: set[str] = set()
        self.seen: set[str] = set()
        self.statuses: dict[LineKey, list[str]] = defaultdict(list)
        self.command_ids: set[str] = set()
        self.events_checked = 0
        self.committed_at: dict[SkuNode, int] = defaultdict(int)
        self._dirty_nodes: set[SkuNode] = set()
        self._dirty_lines: set[LineKey] = set()
        self._debts_made: set[SkuNode] = set()  # by the last input: must be said as drift
        self._drift_said: set[SkuNode] = set()

    # -- inputs -------------------------------------------------------------------------

    def apply_input(self, ev) -> bool:
        """Apply an input's effect on supply; False for a duplicate the engine must ignore."""
        if ev.event_id in self.seen:
            return False
        self.seen.add(ev.event_id)
        t = type(ev)
        if hasattr(ev, "sku") and hasattr(ev, "node"):
            self._dirty_nodes.add((ev.sku, ev.node))
        if t is StockSnapshot:
            key = (ev.sku, ev.node)
            if key not in self.seq or ev.seq > self.seq[key]:
                self.seq[key] = ev.seq
                self.on_hand[key] = ev.on_hand
        elif t is StockAdjusted:
            self._take_from_on_hand((ev.sku, ev.node), -ev.delta)
        elif t is SupplyInbound:
            inbound = self.inbound[(ev.sku, ev.node)]
            if ev.qty:
                inbound[ev.supply_id] = ev.qty
            else:
                inbound.pop(ev.supply_id, None)
        elif t is SupplyReceived:
            key = (ev.sku, ev.node)
            inbound = self.inbound[key]
            if ev.supply_id in inbound:
                inbound[ev.supply_id] -= min(ev.qty, inbound[ev.supply_id])
            self.on_hand[key] += ev.qty
        elif t is ShipmentConfirmed:
            self._take_from_on_hand((ev.sku, ev.node), ev.qty)
            line = (ev.order_id, ev.line_id)
            alloc = self.allocs.get(line) if self.line_sku.get(line) == ev.sku else None
            if alloc is not None and alloc.get(ev.node, 0) > 0:
                self._add_alloc(line, ev.node, -min(ev.qty, alloc[ev.node]))
        elif t is OrderReturned and ev.restock:
            self.on_hand[(ev.sku, ev.node)] += ev.qty
        elif t is OrderCreated and ev.order_id not in self.orders:
            self.orders.add(ev.order_id)
            for line in ev.lines:
                self.line_sku[(ev.order_id, line.line_id)] = line.sku
                self.line_qty[(ev.order_id, line.line_id)] = line.qty
        return True

    def _take_from_on_hand(self, key: SkuNode, qty: int) -> None:
        """On hand is a signed sum; taking it below zero (or deeper) must be said."""
        self.on_hand[key] -= qty
        if qty > 0 and self.on_hand[key] < 0:
            self._debts_made.add(key)

    # -- outputs ------------------------------------------------------------------------

    def apply_outputs(self, outputs: list) -> None:
        """Outputs of one cause, in the order each stream carried them."""
        held_now: dict[LineKey, dict[str, int]] = {}  # the hold sets this cause gives lines
        for out in outputs:
            t = type(out)
            if t is OrderStatus:
                self._status(out, held_now)
            elif t is Alert and out.kind == "drift":
                self._drift_said.add((out.sku, out.node))
            elif t is DispatchAllocate or t is DispatchRelease:
                if out.command_id in self.command_ids:
                    raise PromiseBroken(f"command id repeated: {out.command_id}")
                self.command_ids.add(out.command_id)
                key = (out.order_id, out.line_id)
                sign = 1 if t is DispatchAllocate else -1
                self._add_alloc(key, out.node, sign * out.qty)
                if self.allocs[key][out.node] < 0:
                    raise PromiseBroken(f"line {key} released more than allocated at {out.node}")

    def _status(self, out: OrderStatus, held_now: dict[LineKey, dict[str, int]]) -> None:
        """A line's `held` statuses under one cause replace its holds; one per node, last."""
        key = (out.order_id, out.line_id)
        self.statuses[key].append(out.status)
        if out.status == "held":
            holds = held_now.setdefault(key, {})
            if out.node in holds:
                raise PromiseBroken(
                    f"under {out.cause}: line {key} held twice at {out.node}")
            holds[out.node] = out.qty
            self._set_holds(key, dict(holds))
        elif key in held_now:
            raise PromiseBroken(
                f"under {out.cause}: line {key} is {out.status} after its held statuses")
        elif out.status not in ("shipped", "returned"):
            self._set_holds(key, {})

    # -- checks -------------------------------------------------------------------------

    def _set_holds(self, key: LineKey, holds: dict[str, int]) -> None:
        sku = self.line_sku.get(key)
        for node, qty in self.holds.get(key, {}).items():
            self.committed_at[(sku, node)] -= qty
            self._dirty_nodes.add((sku, node))
        self.holds[key] = holds
        for node, qty in holds.items():
            self.committed_at[(sku, node)] += qty
            self._dirty_nodes.add((sku, node))
        self._dirty_lines.add(key)

    def _add_alloc(self, key: LineKey, node: str, qty: int) -> None:
        sku = self.line_sku.get(key)
        self.allocs[key][node] += qty
        self.committed_at[(sku, node)] += qty
        self._dirty_nodes.add((sku, node))
        self._dirty_lines.add(key)

    def check(self, after: str) -> None:
        """Check every node and line the last event or its outputs touched."""
        self.events_checked += 1
        for sku, node in self._dirty_nodes:
            committed = self.committed_at.get((sku, node), 0)
            supply = self.on_hand[(sku, node)] + sum(self.inbound[(sku, node)].values())
            if committed > max(0, supply):  # a debt is no supply to promise from
                raise PromiseBroken(
                    f"after {after}: {sku}@{node} committed {committed} > supply {supply}"
                )
        if self.event_by_event and not self._debts_made <= self._drift_said:
            unsaid = sorted(self._debts_made - self._drift_said)
            raise PromiseBroken(f"after {after}: on hand below zero without a drift alert: "
                                f"{unsaid}")
        self._debts_made.clear()
        self._drift_said.clear()
        for key in self._dirty_lines:
            held = sum(self.holds.get(key, {}).values())
            allocated = sum(self.allocs[key].values()) if key in self.allocs else 0
            if held + allocated > self.line_qty.get(key, 0):
                raise PromiseBroken(
                    f"after {after}: line {key} commits {held + allocated} > qty {self.line_qty.get(key)}"
                )
        self._dirty_nodes.clear()
        self._dirty_lines.clear()

    def check_final(self) -> None:
        missing = [key for key in self.line_qty if not self.statuses.get(key)]
        if missing:
            raise PromiseBroken(f"{len(missing)} order lines have no status, e.g. {missing[:3]}")


def group_by_cause(outputs: list) -> dict[str, list]:
    by_cause: dict[str, list] = defaultdict(list)
    for out in outputs:
        by_cause[out.cause].append(out)
    return by_cause


def audit(events: list, outputs: list) -> Auditor:
    """Check the promise after every input event of a run, and the run's end conditions."""
    auditor = Auditor()
    by_cause = group_by_cause(o for o in outputs if type(o) is not DeadLetter)
    input_ids = {ev.event_id for ev in events if hasattr(ev, "event_id")}
    unknown = set(by_cause) - input_ids
    if unknown:
        raise PromiseBroken(f"outputs name causes that were never input: {sorted(unknown)[:3]}")
    for ev in events:
        if auditor.apply_input(ev):
            auditor.apply_outputs(by_cause.get(ev.event_id, []))
            auditor.check(ev.event_id)
    auditor.check_final()
    return auditor


def audit_end_state(events: list, outputs: list) -> Auditor:
    """The promise at the end of a run whose order of processing is not known (several input
    partitions): all supply in, then the outputs in the order their topics carried them (one
    line's outputs always come in order), then every node and line checked once."""
    auditor = Auditor(event_by_event=False)
    for ev in events:
        auditor.apply_input(ev)
    run: list = []
    for out in outputs:
        if type(out) is DeadLetter:
            continue
        if run and out.cause != run[-1].cause:
            auditor.apply_outputs(run)
            run = []
        run.append(out)
    auditor.apply_outputs(run)
    auditor._dirty_nodes.update(auditor.committed_at)
    auditor._dirty_lines.update(auditor.line_qty)
    auditor.check("the end")
    auditor.check_final()
    return auditor
