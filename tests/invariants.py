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
- promise dates are true: the units a node promises for now (held and allocated with
  `promised_at` null, as the line's last held or allocated status there says, and its
  transfer reserves) fit in its on hand, and none where on hand is below zero;
- the statuses one input event gives a line name one SKU; a shipment or return of a known
  order that names a SKU none of its lines has, or a line with another line's SKU, is refused
  (a dead letter with reason `sku_not_in_order` / `line_sku_mismatch`) and changes nothing;
  so is a payment or cancellation of an order never created or created more than
  `order_retention_s` before (`unknown_order`), an
  `order.created` resent with other lines (`order_conflict`), and only an event stamped more
  than `max_clock_jump_s` beyond the clock may be refused for its time (`ts_implausible`);
  no other event is refused (event by event: the engine knows an order once its
  `order.created` came before; in an end-state audit only the refusals are judged);
- transfers (`transfer_audit.py`): units reserved for a transfer not yet shipped count as
  committed at its source, and its units in transit as inbound at its destination;
- with the snapshot guard on: a count said quarantined (`alert` snapshot_quarantined, caused by
  that snapshot) is one the guard may hold back at its node (a newer count, dropping on hand
  by more than the guard's share); it leaves on hand as it was until approved (then the count
  applies on top of what changed since) or rejected or superseded, and meanwhile no node it
  is held at gains commitments beyond what the lower count allows;
and, over a whole run: every order line ended with a status, command ids are unique, every
output names a cause that was an input. The same checks serve the replay, dataflow and live tests.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from stockflow.state.config import EngineConfig
from stockflow.state.checkout import PREFIX as CHECKOUT
from stockflow.state.events import (
    CheckoutTaken,
    NodeUpserted,
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderReturned,
    ShipmentConfirmed,
    StockAdjusted,
    StockSnapshot,
    StockSnapshotApproved,
    StockSnapshotRejected,
    SupplyInbound,
    SupplyReceived,
)
from stockflow.state.outputs import (
    Alert,
    DeadLetter,
    DispatchAllocate,
    DispatchRelease,
    OrderStatus,
    ReplenishmentRequested,
)

from .transfer_audit import TransferAudit

LineKey = tuple[str, str]
SkuNode = tuple[str, str]


class PromiseBroken(AssertionError):
    pass


class HeldCount(NamedTuple):
    """A count the engine said it quarantined."""

    event_id: str
    seq: int
    count: int
    on_hand_then: int  # the model's on hand when it came


class Auditor(TransferAudit):
    def __init__(self, event_by_event: bool = True, config: EngineConfig | None = None) -> None:
        # Whether outputs are applied right after their cause (then a debt's drift alert is
        # checked), or after all the inputs (several partitions: only end states compare).
        self.event_by_event = event_by_event
        self.max_jump_s = (config or EngineConfig()).max_clock_jump_s
        self.retention_s = (config or EngineConfig()).order_retention_s
        self.created_at: dict[str, object] = {}  # order id -> the clock when it was created
        self.clock = None  # the latest ts of an input applied
        # The snapshot guard: the engine's share and units, and nodes' own (node.upserted).
        self.guard_share = config.snapshot_guard_share if config is not None else None
        self.guard_units = config.snapshot_guard_units if config is not None else 0
        self.node_guard: dict[str, tuple[float | None, int | None]] = {}
        if self.guard_share is not None and not event_by_event:
            raise ValueError("the snapshot guard is judged event by event")
        self.held: dict[SkuNode, HeldCount] = {}
        self.held_ids: dict[str, SkuNode] = {}
        self._count: StockSnapshot | None = None  # a count whose fate its outputs tell
        # Quarantines open when the current input came: key -> (event id, committed, the
        # supply the lower count leaves).
        self._held_before: dict[SkuNode, tuple[str, int, int]] = {}
        self.on_hand: dict[SkuNode, int] = defaultdict(int)  # signed: below zero is a debt
        self.seq: dict[SkuNode, int] = {}
        self.inbound: dict[SkuNode, dict[str, int]] = defaultdict(dict)
        self.holds: dict[LineKey, dict[str, int]] = defaultdict(dict)
        self.allocs: dict[LineKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.line_sku: dict[LineKey, str] = {}
        self.line_qty: dict[LineKey, int] = {}
        self.orders: set[str] = set()
        self.intake_n: dict[str, int] = {}  # sku -> the checkout intake last applied
        self.order_skus: dict[str, set[str]] = {}
        self.order_lines: dict[str, set[tuple[str, str, int]]] = {}
        self.seen: set[str] = set()
        self.statuses: dict[LineKey, list[str]] = defaultdict(list)
        self.command_ids: set[str] = set()
        self.events_checked = 0
        self.committed_at: dict[SkuNode, int] = defaultdict(int)
        # Promise dates: (line, node) whose holds / allocation there wait for inbound, as the
        # line's last held / allocated status at that node said; the units they make waiting
        # at each node, and each line's share of them.
        self.hold_dated: dict[LineKey, set[str]] = defaultdict(set)
        self.alloc_dated: dict[LineKey, set[str]] = defaultdict(set)
        self.waiting_at: dict[SkuNode, int] = defaultdict(int)
        self._waiting_of: dict[LineKey, dict[str, int]] = {}
        self._dirty_nodes: set[SkuNode] = set()
        self._dirty_lines: set[LineKey] = set()
        self._debts_made: set[SkuNode] = set()  # by the last input: must be said as drift
        self._drift_said: set[SkuNode] = set()
        self._refusals: list = []  # refused inputs, in an end-state audit
        self._init_transfers()

    # -- inputs -------------------------------------------------------------------------

    def apply_input(self, ev, refused: str | None = None) -> bool:
        """Apply an input's effect on supply; False for a duplicate the engine must ignore.
        `refused`: the reason the engine gave for dead-lettering it, as contradicting what it
        knows."""
        if ev.event_id in self.seen:
            return False
        self.seen.add(ev.event_id)
        t = type(ev)
        self._held_before = {
            key: (held.event_id, self.committed_at.get(key, 0), self._lower_supply(key))
            for key, held in self.held.items()
        }
        refused_now = self._judge_refusal(ev, refused)
        if refused != "ts_implausible" and (self.clock is None or ev.ts > self.clock):
            self.clock = ev.ts  # the engine's clock: refused events move it too, but for time
        if refused_now:
            return True  # no effect; its cause may still have moved the clock (outputs)
        if hasattr(ev, "sku") and hasattr(ev, "node"):
            self._dirty_nodes.add((ev.sku, ev.node))
        if self._transfer_input(ev):
            pass
        elif t is StockSnapshot:
            key = (ev.sku, ev.node)
            if self._newer(key, ev.seq):
                self._lift(key)  # a later count supersedes a held one
                if self._guard_at(ev.node) is None or not self.event_by_event:
                    self._set_count(key, ev.on_hand, ev.seq)
                else:
                    self._count = ev  # applied, unless its outputs say it is quarantined
        elif t is StockSnapshotApproved:
            key = self.held_ids.get(ev.snapshot_event_id)
            if key is not None:
                held = self._lift(key)
                # the count, plus whatever moved on hand since it came
                self._set_count(key, held.count + self.on_hand[key] - held.on_hand_then,
                                held.seq)
                self._dirty_nodes.add(key)
        elif t is StockSnapshotRejected:
            key = self.held_ids.get(ev.snapshot_event_id)
            if key is not None:
                self._lift(key)
        elif t is NodeUpserted:
            node = ev.node
            self.node_guard[node.id] = (node.snapshot_guard_share, node.snapshot_guard_units)
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
        elif t is CheckoutTaken:  # the engine's journal: its holds are lines of their own
            if ev.n > self.intake_n.get(ev.sku, 0):  # as the ledger, once per SKU and number
                self.intake_n[ev.sku] = ev.n
                for hold in ev.holds:
                    self.line_sku[(CHECKOUT + hold.hold_id, "1")] = ev.sku
                    self.line_qty[(CHECKOUT + hold.hold_id, "1")] = hold.qty
        elif t is OrderCreated and ev.order_id not in self.orders:
            self.orders.add(ev.order_id)
            self.order_skus[ev.order_id] = {line.sku for line in ev.lines}
            self.created_at[ev.order_id] = self.clock
            self.order_lines[ev.order_id] = {(line.line_id, line.sku, line.qty)
                                             for line in ev.lines}
            for line in ev.lines:
                self.line_sku[(ev.order_id, line.line_id)] = line.sku
                self.line_qty[(ev.order_id, line.line_id)] = line.qty
        return True

    def _judge_refusal(self, ev, refused: str | None) -> bool:
        """Whether `ev` is refused; raises if it is refused for nothing or another reason, or
        (event by event) is one to refuse and is not."""
        if refused is not None:
            if self.event_by_event:
                self._check_refusal(ev, refused)
            else:
                self._refusals.append((ev, refused))  # judged at the end: every order known
            return True
        due = self._refusal_due(ev)
        if due is not None and self.event_by_event:
            raise PromiseBroken(f"{ev.event_id} ({ev.sku} for {ev.order_id}/{ev.line_id}) "
                                f"was not refused: {due}")
        return False

    def _check_refusal(self, ev, refused: str) -> None:
        if refused == "ts_implausible":  # the clock guard's: judged on the clock alone
            if self.clock is None or (ev.ts - self.clock).total_seconds() <= self.max_jump_s:
                raise PromiseBroken(f"{ev.event_id} refused for its time {ev.ts}, within "
                                    f"{self.max_jump_s} s of the clock {self.clock}")
            return
        due = self._refusal_due(ev)
        if due != refused:
            raise PromiseBroken(f"{ev.event_id} refused as {refused}; the model says {due}")

    def _refusal_due(self, ev) -> str | None:
        """Why a shipment or return of a known order contradicts it, or a payment or cancellation
        names an order never created, or a resend other lines, if it does."""
        t = type(ev)
        if t is OrderPaid or t is OrderCancelled:
            if ev.order_id not in self.orders:
                return "unknown_order"
            now = ev.ts if self.clock is None or ev.ts > self.clock else self.clock
            forgotten = (now - self.created_at[ev.order_id]).total_seconds() > self.retention_s
            return "unknown_order" if forgotten else None
        if t is OrderCreated:
            if ev.order_id not in self.orders:
                return None
            lines = {(line.line_id, line.sku, line.qty) for line in ev.lines}
            return None if lines == self.order_lines[ev.order_id] else "order_conflict"
        if t is not ShipmentConfirmed and t is not OrderReturned:
            return None
        skus = self.order_skus.get(ev.order_id)
        if skus is None:
            return None
        if ev.sku not in skus:
            return "sku_not_in_order"
        known = self.line_sku.get((ev.order_id, ev.line_id))
        return "line_sku_mismatch" if known is not None and known != ev.sku else None

    # -- the snapshot guard -------------------------------------------------------------

    def _newer(self, key: SkuNode, seq: int) -> bool:
        held = self.held.get(key)
        return ((key not in self.seq or seq > self.seq[key])
                and (held is None or seq > held.seq))

    def _set_count(self, key: SkuNode, on_hand: int, seq: int) -> None:
        self.seq[key] = seq
        self.on_hand[key] = on_hand

    def _lift(self, key: SkuNode) -> HeldCount | None:
        held = self.held.pop(key, None)
        if held is not None:
            del self.held_ids[held.event_id]
        return held

    def _guard_at(self, node: str) -> tuple[float, int] | None:
        share, units = self.node_guard.get(node, (None, None))
        share = self.guard_share if share is None else share
        units = self.guard_units if units is None else units
        return None if share is None else (share, units)

    def _lower_supply(self, key: SkuNode) -> int:
        """Supply at `key` if the count held back there is true: on hand moved by whatever
        moved it since the count came."""
        held = self.held[key]
        on_hand = held.count + self.on_hand[key] - held.on_hand_then
        return on_hand + sum(self.inbound[key].values())

    def _judge_count(self, outputs: list) -> None:
        """The snapshot just input was applied, unless its outputs say it was quarantined;
        then it must be one the guard may hold back."""
        ev, self._count = self._count, None
        said = [o for o in outputs if type(o) is Alert and o.kind == "snapshot_quarantined"]
        if not said:
            if ev is not None:
                self._set_count((ev.sku, ev.node), ev.on_hand, ev.seq)
            return
        alert = said[0]
        if ev is None or len(said) > 1 or alert.cause != ev.event_id or (
                (alert.sku, alert.node) != (ev.sku, ev.node)):
            raise PromiseBroken(f"under {alert.cause}: a count quarantined that the guard does "
                                f"not judge: {alert.sku}@{alert.node} {alert.detail}")
        key = (ev.sku, ev.node)
        share, _ = self._guard_at(ev.node)
        on_hand = self.on_hand[key]
        if not on_hand - ev.on_hand > share * on_hand:
            raise PromiseBroken(f"under {ev.event_id}: count {ev.on_hand} quarantined, though "
                                f"it drops on hand {on_hand} by no more than {share:.0%}")
        self.held[key] = HeldCount(ev.event_id, ev.seq, ev.on_hand, on_hand)
        self.held_ids[ev.event_id] = key

    def _take_from_on_hand(self, key: SkuNode, qty: int) -> None:
        """On hand is a signed sum; taking it below zero (or deeper) must be said."""
        self.on_hand[key] -= qty
        if qty > 0 and self.on_hand[key] < 0:
            self._debts_made.add(key)

    # -- outputs ------------------------------------------------------------------------

    def apply_outputs(self, outputs: list) -> None:
        """Outputs of one cause, in the order each stream carried them."""
        held_now: dict[LineKey, dict[str, int]] = {}  # the hold sets this cause gives lines
        sku_now: dict[LineKey, str] = {}  # the SKU this cause's statuses name for each line
        self._judge_count(outputs)
        for out in outputs:
            t = type(out)
            self._transfer_output(out)
            if t is OrderStatus:
                self._status(out, held_now, sku_now)
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

    def _status(self, out: OrderStatus, held_now: dict[LineKey, dict[str, int]],
                sku_now: dict[LineKey, str]) -> None:
        """A line's `held` statuses under one cause replace its holds; one per node, last;
        all of its statuses under one cause name one SKU."""
        key = (out.order_id, out.line_id)
        if sku_now.setdefault(key, out.sku) != out.sku:
            raise PromiseBroken(f"under {out.cause}: line {key} is {out.status} as "
                                f"{out.sku} and {sku_now[key]} under one event")
        self.statuses[key].append(out.status)
        if out.status == "held":
            holds = held_now.setdefault(key, {})
            if out.node in holds:
                raise PromiseBroken(
                    f"under {out.cause}: line {key} held twice at {out.node}")
            holds[out.node] = out.qty
            if len(holds) == 1:
                self.hold_dated[key] = set()
            if out.promised_at is not None:
                self.hold_dated[key].add(out.node)
            self._set_holds(key, dict(holds))
        elif out.status == "allocated":
            dated = self.alloc_dated[key]
            if out.promised_at is None:
                dated.discard(out.node)
            else:
                dated.add(out.node)
            self._set_holds(key, {})
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
        self._count_waiting(key, sku)

    def _add_alloc(self, key: LineKey, node: str, qty: int) -> None:
        sku = self.line_sku.get(key)
        self.allocs[key][node] += qty
        self.committed_at[(sku, node)] += qty
        self._dirty_nodes.add((sku, node))
        self._dirty_lines.add(key)
        self._count_waiting(key, sku)

    def _count_waiting(self, key: LineKey, sku: str | None) -> None:
        """The line's units waiting for inbound, node by node, counted again."""
        for node, units in self._waiting_of.pop(key, {}).items():
            self.waiting_at[(sku, node)] -= units
            self._dirty_nodes.add((sku, node))
        waiting: dict[str, int] = {}
        for node in self.hold_dated.get(key, ()):
            waiting[node] = waiting.get(node, 0) + self.holds.get(key, {}).get(node, 0)
        allocs = self.allocs.get(key)
        for node in self.alloc_dated.get(key, ()):
            if allocs is not None:
                waiting[node] = waiting.get(node, 0) + allocs.get(node, 0)
        waiting = {node: units for node, units in waiting.items() if units}
        if waiting:
            self._waiting_of[key] = waiting
            for node, units in waiting.items():
                self.waiting_at[(sku, node)] += units
                self._dirty_nodes.add((sku, node))

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
            now = committed - self.waiting_at.get((sku, node), 0)
            if now > max(0, self.on_hand[(sku, node)]):
                raise PromiseBroken(
                    f"after {after}: {sku}@{node} promises {now} for now (promised_at null, "
                    f"and transfer reserves) > on hand {self.on_hand[(sku, node)]}"
                )
        if self.event_by_event and not self._debts_made <= self._drift_said:
            unsaid = sorted(self._debts_made - self._drift_said)
            raise PromiseBroken(f"after {after}: on hand below zero without a drift alert: "
                                f"{unsaid}")
        self._debts_made.clear()
        self._drift_said.clear()
        for key, (event_id, before, lower_before) in self._held_before.items():
            held = self.held.get(key)
            if held is None or held.event_id != event_id:
                continue  # settled or superseded under this event
            committed = self.committed_at.get(key, 0)
            allowed = max(before, lower_before, self._lower_supply(key))
            if committed > allowed:
                raise PromiseBroken(
                    f"after {after}: {key[0]}@{key[1]} holds back count {held.count}, yet "
                    f"commitments rose from {before} to {committed}, beyond what it allows"
                )
        self._held_before = {}
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
        for ev, refused in self._refusals:
            self._check_refusal(ev, refused)
        missing = [key for key in self.line_qty if not self.statuses.get(key)]
        if missing:
            raise PromiseBroken(f"{len(missing)} order lines have no status, e.g. {missing[:3]}")


def group_by_cause(outputs: list) -> dict[str, list]:
    by_cause: dict[str, list] = defaultdict(list)
    for out in outputs:
        by_cause[out.cause].append(out)
    return by_cause


def refused_inputs(outputs: list) -> dict[str, str]:
    """Event id -> the reason the engine refused it as contradicting what it knows (the
    malformed are not events)."""
    return {o.cause: o.reason for o in outputs if type(o) is DeadLetter and o.reason is not None}


def audit(events: list, outputs: list, config: EngineConfig | None = None) -> Auditor:
    """Check the promise after every input event of a run, and the run's end conditions;
    `config`: the engine's, for its snapshot guard."""
    auditor = Auditor(config=config)
    by_cause = group_by_cause(o for o in outputs if type(o) is not DeadLetter)
    input_ids = {ev.event_id for ev in events if hasattr(ev, "event_id")}
    unknown = set(by_cause) - input_ids
    if unknown:
        raise PromiseBroken(f"outputs name causes that were never input: {sorted(unknown)[:3]}")
    refused = refused_inputs(outputs)
    for ev in events:
        if auditor.apply_input(ev, refused.get(ev.event_id)):
            auditor.apply_outputs(by_cause.get(ev.event_id, []))
            auditor.check(ev.event_id)
    auditor.check_final()
    return auditor


def audit_end_state(events: list, outputs: list) -> Auditor:
    """The promise at the end of a run whose order of processing is not known (several input
    partitions): all supply in, then the outputs in the order their topics carried them (one
    line's outputs always come in order), then every node and line checked once.

    Topics are read partition by partition, in no order across topics: a transfer's ending
    (`alerts`) may be read before its request (`replenishment`). So transfer requests go in
    first; a transfer is requested once and ended at most once, and the end state is the same."""
    auditor = Auditor(event_by_event=False)
    refused = refused_inputs(outputs)
    for ev in events:
        auditor.apply_input(ev, refused.get(ev.event_id))
    requests = [o for o in outputs
                if type(o) is ReplenishmentRequested and o.from_node is not None]
    run: list = []
    for out in requests + [o for o in outputs if not (type(o) is ReplenishmentRequested
                                                        and o.from_node is not None)]:
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
