"""The engine's promise under random interleavings, duplicates, supply drops, debts and crashes.

Hypothesis builds event sequences over a small world (3 nodes, 3 channels, 2 SKUs, a handful
of orders) so that lines compete for the same units, and on hand goes below zero now and then
before receipts pay it back; with the snapshot guard on, counts fall far below what is
committed and wait for approvals and rejections. The engine runs them and the `Auditor` checks
the contract after every event from the outputs alone, alongside the engine's own books. The
auditor's own refusals are tested at the end. Slow movers get histories of their own, weeks
long, whose alerts are recounted from the event list alone.
"""

from __future__ import annotations

import pickle
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import (
    Channel,
    ChannelUpserted,
    Node,
    NodeUpserted,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderPaid,
    OrderReturned,
    PolicyUpserted,
    ShipmentConfirmed,
    ShipTo,
    StockAdjusted,
    StockSnapshot,
    StockSnapshotApproved,
    StockSnapshotRejected,
    SupplyInbound,
    SupplyReceived,
    epoch_ms,
)
from stockflow.state.ledger import Ledger
from stockflow.state.outputs import Alert, AvailabilityChanged, OrderStatus

from .invariants import Auditor, PromiseBroken, audit

T0 = datetime(2026, 11, 11, tzinfo=timezone.utc)
NODES = ["N-EAST", "N-SOUTH", "S-EAST"]
SKUS = ["K1", "K2"]
ORDERS = [f"O{i}" for i in range(6)]
SUPPLIES = ["PO-1", "PO-2", "PO-3"]

MASTER = [
    NodeUpserted(event_id="m1", ts=T0, node=Node(
        id="N-EAST", kind="dc", region="east", lat=31.2, lon=121.5,
        can_ship=True, can_pickup=False, ship_cost=5.0)),
    NodeUpserted(event_id="m2", ts=T0, node=Node(
        id="N-SOUTH", kind="dc", region="south", lat=23.1, lon=113.3,
        can_ship=True, can_pickup=False, ship_cost=6.0)),
    NodeUpserted(event_id="m3", ts=T0, node=Node(
        id="S-EAST", kind="store", region="east", lat=30.3, lon=120.2,
        can_ship=True, can_pickup=True)),
    ChannelUpserted(event_id="m4", ts=T0, channel=Channel(
        id="web", nodes=["*"], hold_ttl_s=60, allow_split=True, backorder=False)),
    ChannelUpserted(event_id="m5", ts=T0, channel=Channel(
        id="live", nodes=["N-EAST", "N-SOUTH"], hold_ttl_s=20, allow_split=False, backorder=True)),
    ChannelUpserted(event_id="m6", ts=T0, channel=Channel(
        id="pos", nodes=["S-EAST"], hold_ttl_s=10, allow_split=False, backorder=True)),
]

qty = st.integers(1, 4)
node = st.sampled_from(NODES)
sku = st.sampled_from(SKUS)
order_id = st.sampled_from(ORDERS)


@st.composite
def order_created(draw):
    channel = draw(st.sampled_from(["web", "live", "pos"]))
    pickup = channel == "pos" and draw(st.booleans())
    skus = draw(st.lists(sku, min_size=1, max_size=2, unique=True))
    return dict(
        type=OrderCreated, order_id=draw(order_id), channel=channel,
        lines=[OrderLine(line_id=str(i + 1), sku=s, qty=draw(qty)) for i, s in enumerate(skus)],
        ship_to=ShipTo(region=draw(st.sampled_from(["east", "south"])), lat=29.0, lon=118.0),
        fulfillment="pickup" if pickup else "ship", pickup_node="S-EAST" if pickup else None,
        paid=draw(st.booleans()),
    )


def _kw(type_, **fields):
    return st.fixed_dictionaries({"type": st.just(type_), **fields})


event_body = st.one_of(
    _kw(StockSnapshot, sku=sku, node=node, on_hand=st.integers(0, 8), seq=st.integers(0, 30)),
    _kw(StockAdjusted, sku=sku, node=node, delta=st.integers(-6, 5), reason=st.just("count")),
    _kw(SupplyInbound, supply_id=st.sampled_from(SUPPLIES), sku=st.just("K1"), node=node,
        qty=st.integers(0, 5), eta=st.just(T0 + timedelta(hours=1)), kind=st.just("in_transit")),
    _kw(SupplyReceived, supply_id=st.sampled_from(SUPPLIES), sku=st.just("K1"), node=node, qty=qty),
    _kw(PolicyUpserted, sku=sku, node=node, safety_stock=st.integers(0, 2),
        reorder_point=st.one_of(st.none(), st.integers(0, 4))),
    order_created(), order_created(),
    _kw(OrderPaid, order_id=order_id), _kw(OrderPaid, order_id=order_id),
    _kw(OrderCancelled, order_id=order_id,
        line_ids=st.one_of(st.none(), st.just(["1"]), st.just(["2"]))),
    _kw(ShipmentConfirmed, order_id=order_id, line_id=st.sampled_from(["1", "2"]), sku=sku,
        node=node, qty=qty),
    _kw(OrderReturned, order_id=order_id, line_id=st.just("1"), sku=sku, node=node, qty=qty,
        restock=st.booleans()),
)


# Holds coming and going: unpaid orders on channels that queue, supply dropping and coming
# back, time passing holds' deadlines, so one event often expires holds, fills a backorder
# and moves holds away from a node whose supply fell.
hold_churn = st.one_of(
    order_created(), order_created(), order_created(),
    _kw(StockAdjusted, sku=sku, node=node, delta=st.integers(-4, 3), reason=st.just("count")),
    _kw(SupplyReceived, supply_id=st.sampled_from(SUPPLIES), sku=sku, node=node, qty=qty),
    _kw(OrderPaid, order_id=order_id),
)


@st.composite
def debt_episode(draw, seq: int):
    """A count, a shipment beyond it (on hand goes below zero: a debt), a few events that
    meet the debt, then what pays it: a receipt, a found adjustment or a newer count. The
    shipment is of an order the engine never saw (one it knows may name the line's other SKU,
    and be refused)."""
    s, n = draw(sku), draw(node)
    count = draw(st.integers(0, 4))
    bodies = [
        dict(type=StockSnapshot, sku=s, node=n, on_hand=count, seq=seq),
        dict(type=ShipmentConfirmed, order_id=f"WMS-{seq}", line_id="1", sku=s, node=n,
             qty=count + draw(st.integers(1, 4))),
        *draw(st.lists(event_body, max_size=3)),
    ]
    paid_by = draw(st.sampled_from([SupplyReceived, StockAdjusted, StockSnapshot]))
    units = draw(st.integers(1, 8))
    if paid_by is SupplyReceived:
        bodies.append(dict(type=SupplyReceived, supply_id=draw(st.sampled_from(SUPPLIES)),
                           sku=s, node=n, qty=units))
    elif paid_by is StockAdjusted:
        bodies.append(dict(type=StockAdjusted, sku=s, node=n, delta=units, reason="found"))
    else:
        bodies.append(dict(type=StockSnapshot, sku=s, node=n, on_hand=units, seq=seq + 1))
    return bodies


# -- the snapshot guard: counts far below commitments, approvals, rejections ----------------


def _verdict(type_):
    """An approval or rejection of the k-th latest count before it (resolved in `histories`):
    one quarantined, one applied at once, one settled already, or none at all."""
    return _kw(type_, snapshots_back=st.integers(0, 3))


guard_body = st.one_of(
    event_body,
    _kw(StockSnapshot, sku=sku, node=node, on_hand=st.integers(0, 2), seq=st.integers(0, 60)),
    _kw(StockSnapshot, sku=sku, node=node, on_hand=st.integers(8, 16), seq=st.integers(0, 60)),
    _verdict(StockSnapshotApproved), _verdict(StockSnapshotApproved),
    _verdict(StockSnapshotRejected),
)

# N-SOUTH upserted again with a guard of its own: on, off (a share of 1), or the engine's.
south_guard = _kw(NodeUpserted, node=st.builds(
    lambda share, units: Node(
        id="N-SOUTH", kind="dc", region="south", lat=23.1, lon=113.3, can_ship=True,
        can_pickup=False, ship_cost=6.0, snapshot_guard_share=share, snapshot_guard_units=units),
    st.sampled_from([None, 0.0, 1.0]), st.sampled_from([None, 0, 3])))
guard_and_node_body = st.one_of(guard_body, south_guard)

guard_config = st.builds(
    lambda share, units: EngineConfig(buckets=3, snapshot_guard_share=share,
                                      snapshot_guard_units=units),
    st.sampled_from([0.0, 0.25, 0.5]), st.integers(0, 2))


@st.composite
def guard_episode(draw, seq: int, k: int):
    """A count of 40 at S-EAST (the pos channel's only node), a paid pos order of 5 there,
    then a count of at most 2 (`guard-<k>`): quarantined whenever the order was allocated.
    Maybe the order is cancelled then (room for new lines within what the count allows);
    then a few events, and its approval, its rejection, a later count, or nothing."""
    s = draw(sku)
    low = f"guard-{k}"
    bodies = [
        dict(type=StockSnapshot, sku=s, node="S-EAST", on_hand=40, seq=seq),
        dict(type=OrderCreated, event_id=f"guard-order-{k}", order_id=f"G{k}", channel="pos",
             lines=[OrderLine(line_id="1", sku=s, qty=5)],
             ship_to=ShipTo(region="east", lat=30.0, lon=120.0), fulfillment="ship",
             paid=True),
        dict(type=StockSnapshot, event_id=low, sku=s, node="S-EAST",
             on_hand=draw(st.integers(0, 2)), seq=seq + 1),
    ]
    if draw(st.booleans()):
        bodies.append(dict(type=OrderCancelled, order_id=f"G{k}", line_ids=None))
        bodies += draw(st.lists(order_created(), min_size=1, max_size=2))
    bodies += draw(st.lists(guard_body, max_size=3))
    then = draw(st.sampled_from([StockSnapshotApproved, StockSnapshotRejected, StockSnapshot,
                                 None]))
    if then is StockSnapshot:
        bodies.append(dict(type=StockSnapshot, sku=s, node="S-EAST",
                           on_hand=draw(st.integers(0, 12)), seq=seq + 2))
    elif then is not None:
        bodies.append(dict(type=then, snapshot_event_id=low))
    return bodies


@st.composite
def histories(draw, max_events=60, debts=(0, 2), body=event_body, guards=(0, 0)):
    """Master data and opening stock, then random events with jittery clocks and
    repeated deliveries; `body`: what each event is drawn from; `debts`: how many debt
    episodes (see `debt_episode`) go in; `guards`: how many guard episodes (`guard_episode`)."""
    events = list(MASTER)
    for i, (s, n) in enumerate((s, n) for s in SKUS for n in NODES):
        events.append(StockSnapshot(event_id=f"open-{i}", ts=T0, sku=s, node=n,
                                    on_hand=draw(st.integers(0, 6)), seq=0))
    opening = len(events)
    bodies = draw(st.lists(body, min_size=10, max_size=max_events))
    places = draw(st.lists(st.integers(0, len(bodies)), min_size=debts[0], max_size=debts[1]))
    for k, at in enumerate(sorted(places, reverse=True)):  # later episodes, newer counts
        bodies[at:at] = draw(debt_episode(seq=1000 - 2 * k))
    places = draw(st.lists(st.integers(0, len(bodies)), min_size=guards[0], max_size=guards[1]))
    for k, at in enumerate(sorted(places, reverse=True)):
        bodies[at:at] = draw(guard_episode(seq=2000 - 3 * k, k=k))
    counts = [ev.event_id for ev in events if type(ev) is StockSnapshot]
    t = T0
    for i, body in enumerate(bodies):
        t += timedelta(seconds=draw(st.integers(-3, 15)))  # sometimes out of order
        fields = dict(body)
        type_ = fields.pop("type")
        event_id = fields.pop("event_id", f"e{i}")
        if "snapshots_back" in fields:
            back = fields.pop("snapshots_back")
            fields["snapshot_event_id"] = counts[-1 - back] if back < len(counts) else "none"
        events.append(type_(event_id=event_id, ts=t, **fields))
        if type_ is StockSnapshot:
            counts.append(event_id)
        if events and draw(st.integers(0, 9)) == 0:  # a redelivered earlier event
            events.append(events[draw(st.integers(opening, len(events) - 1))])
    return events


def run(events, chunks=None, config=None) -> list:
    engine = Engine(config or EngineConfig(buckets=3))
    out: list = []
    if chunks is None:
        for ev in events:
            out.extend(engine.process([ev]))
            check_books(engine)
    else:
        i = 0
        for size in chunks:
            out.extend(engine.process(events[i:i + size]))
            i += size
        out.extend(engine.process(events[i:]))
    return out


def check_books(engine: Engine) -> None:
    """The engine's own books agree with its lines and keep the promise."""
    for sku_, book in engine.books():
        for node_id, pos in book.positions.items():
            held = sum(l.parts.get(node_id, 0) for ls in book.lines.values()
                       for l in ls.values() if l.status == "held")
            allocated = sum(l.parts.get(node_id, 0) for ls in book.lines.values()
                            for l in ls.values() if l.status == "allocated")
            assert (pos.held, pos.allocated) == (held, allocated), (sku_, node_id)
            assert pos.held >= 0 and pos.allocated >= 0
            waiting = sum(l.parts.get(node_id, 0) for ls in book.lines.values()
                          for l in ls.values() if l.promised and node_id in l.promised)
            assert pos.waiting == waiting, (sku_, node_id)
            assert pos.committed <= max(0, pos.supply), f"{sku_}@{node_id} over-committed"
        opened: dict = {}
        waiting_at: dict = {}
        for o, ls in book.lines.items():
            for l in ls.values():
                for n in l.parts:
                    opened.setdefault(n, {})[o] = opened.get(n, {}).get(o, 0) + 1
                for n in l.promised or ():
                    waiting_at.setdefault(n, {})[o] = waiting_at.get(n, {}).get(o, 0) + 1
        assert book.open_at == opened, sku_
        assert book.waiting_at == waiting_at, sku_


def encoded(outputs, with_availability=True) -> list[bytes]:
    enc = msgspec.json.Encoder()
    return sorted(enc.encode(o) for o in outputs
                  if with_availability or type(o) is not AvailabilityChanged)


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(histories())
def test_promise_holds_after_every_event(events):
    outputs = run(events)
    auditor = audit(events, outputs)
    assert auditor.events_checked == len({e.event_id for e in events})


@PROPERTY
@given(histories(debts=(1, 3)))
def test_signed_on_hand_trace_keeps_the_promise(events):
    """Shipments beyond on hand leave debts; receipts, adjustments and counts pay them."""
    outputs = run(events)
    audit(events, outputs)
    debts = [o for o in outputs if type(o) is Alert and "debt" in o.detail]
    assert debts, "the trace made no debt"


@PROPERTY
@given(histories(body=hold_churn, debts=(0, 0)))
def test_the_held_statuses_of_one_event_are_each_lines_whole_hold_set(events):
    """The auditor takes a line's held statuses under one cause as its holds from then on:
    a stale node among them would over-commit that node or the line."""
    audit(events, run(events))


@PROPERTY
@given(histories(body=guard_body, guards=(1, 3)))
def test_the_guard_is_off_unless_configured(events):
    outputs = run(events)
    audit(events, outputs)  # the auditor's guard is off: it refuses any quarantine
    assert not [o for o in outputs if type(o) is Alert and o.kind == "snapshot_quarantined"]


@PROPERTY
@given(guard_config, histories(body=guard_and_node_body, guards=(1, 3)))
def test_the_snapshot_guard_keeps_the_promise_after_every_event(config, events):
    """Quarantined counts leave commitments alone and let nothing new beyond them; approvals
    apply them, rejections and later counts drop them; a count of nothing under a paid order
    is always quarantined."""
    outputs = run(events, config=config)
    audit(events, outputs, config)
    quarantined = {o.cause for o in outputs
                   if type(o) is Alert and o.kind == "snapshot_quarantined"}
    placed = {o.cause for o in outputs if type(o) is OrderStatus and o.status == "allocated"
              and o.cause.startswith("guard-order-") and o.node == "S-EAST"}
    episodes = [ev.event_id for ev in events if ev.event_id.startswith("guard-order-")]
    for order in episodes:
        if order in placed:
            low = order.replace("guard-order-", "guard-")
            assert low in quarantined, f"{low} was applied at once"


@PROPERTY
@given(guard_config, histories(max_events=30, body=guard_and_node_body, guards=(1, 2)))
def test_with_quarantined_counts_max_line_qty_is_what_one_line_can_get(config, events):
    max_line_qty_is_what_one_line_can_get(events, config)


@PROPERTY
@given(guard_config, histories(body=guard_and_node_body, guards=(1, 3)), st.data())
def test_crash_and_restore_with_quarantined_counts_resumes_exactly(config, events, data):
    crash_and_restore_resumes_exactly(events, data.draw(st.integers(0, len(events))), config)


@PROPERTY
@given(guard_config, histories(body=guard_and_node_body, guards=(1, 3)), st.integers(1, 8))
def test_verdicts_find_their_count_whatever_the_bucket_count(config, events, buckets):
    one = run(events, config=msgspec.structs.replace(config, buckets=1))
    many = run(events, config=msgspec.structs.replace(config, buckets=buckets))
    assert encoded(one) == encoded(many)


@PROPERTY
@given(histories(max_events=30))
def test_max_line_qty_is_exactly_what_one_line_can_get(events):
    max_line_qty_is_what_one_line_can_get(events, EngineConfig(buckets=3))


def max_line_qty_is_what_one_line_can_get(events: list, config: EngineConfig) -> None:
    """For the last published (sku, channel): a paid line of `max_line_qty` units is
    allocated at once, and one of a unit more is not (each asked of a copy of the engine)."""
    engine = Engine(config)
    last = {}
    for ev in events:
        for o in engine.process([ev]):
            if type(o) is AvailabilityChanged:
                last[(o.sku, o.channel)] = o.max_line_qty
    for (sku_, channel), max_line in sorted(last.items()):
        if max_line:
            assert _fills(engine, sku_, channel, max_line), (sku_, channel, max_line)
        assert not _fills(engine, sku_, channel, max_line + 1), (sku_, channel, max_line)


def _fills(engine: Engine, sku_: str, channel: str, qty: int) -> bool:
    """Whether a paid ship line of `qty` would be allocated now; the engine is left as it is."""
    copy = Engine(engine.config)
    copy.router = pickle.loads(pickle.dumps(engine.router))
    copy.ledgers = {b: Ledger.restore(l.snapshot(), engine.config)
                    for b, l in engine.ledgers.items()}
    probe = OrderCreated(
        event_id="probe", ts=T0, order_id="PROBE", channel=channel,  # T0: the clock stays
        lines=[OrderLine(line_id="1", sku=sku_, qty=qty)],
        ship_to=ShipTo(region="east", lat=29.0, lon=118.0), fulfillment="ship", paid=True,
    )
    return any(type(o) is OrderStatus and o.order_id == "PROBE" and o.status == "allocated"
               for o in copy.process([probe]))


@PROPERTY
@given(histories())
def test_same_input_twice_gives_the_same_outputs(events):
    assert encoded(run(events)) == encoded(run(events))


@PROPERTY
@given(histories())
def test_every_event_duplicated_changes_nothing(events):
    doubled = [ev for ev in events for _ in (0, 1)]
    assert encoded(run(doubled)) == encoded(run(events))


@PROPERTY
@given(histories(), st.lists(st.integers(1, 12), max_size=8))
def test_batching_changes_only_how_availability_is_coalesced(events, chunks):
    assert encoded(run(events, chunks), False) == encoded(run(events), False)


@PROPERTY
@given(histories(), st.integers(1, 8))
def test_bucket_count_does_not_change_decisions(events, buckets):
    one = run(events, config=EngineConfig(buckets=1))
    many = run(events, config=EngineConfig(buckets=buckets))
    assert encoded(one) == encoded(many)


@PROPERTY
@given(histories(), st.data())
def test_crash_and_restore_from_snapshot_resumes_exactly(events, data):
    crash_and_restore_resumes_exactly(events, data.draw(st.integers(0, len(events))),
                                      EngineConfig(buckets=3))


def crash_and_restore_resumes_exactly(events: list, cut: int, config: EngineConfig) -> None:
    """Snapshot every piece of state mid-stream, rebuild from the bytes, carry on."""
    uninterrupted = run(events, config=config)

    first = Engine(config)
    out = []
    for ev in events[:cut]:
        out.extend(first.process([ev]))
    restored = restore(first, config)
    for ev in events[cut:]:
        out.extend(restored.process([ev]))
    # Availability may be said again after a restore (see the next test); the rest is exact.
    assert encoded(out, False) == encoded(uninterrupted, False)
    assert last_availability(out) == last_availability(uninterrupted)


@PROPERTY
@given(histories(), st.data())
def test_after_a_crash_the_last_availability_published_is_the_truth(events, data):
    """A run dies after publishing past its last snapshot; the rerun from the snapshot batches
    the same events otherwise, which would coalesce some of those values away: what a
    consumer holds last for every (sku, channel) must still be the uninterrupted truth."""
    cut = data.draw(st.integers(0, len(events)))
    died = data.draw(st.integers(cut, len(events)))
    config = EngineConfig(buckets=3)
    truth = last_availability(run(events, config=config))

    first = Engine(config)
    topic = []
    for ev in events[:cut]:
        topic.extend(first.process([ev]))
    snapshot = restore(first, config)
    for ev in events[cut:died]:  # the run that dies, one event per batch
        topic.extend(first.process([ev]))
    topic.extend(snapshot.process(events[cut:]))  # the rerun, in one batch
    assert last_availability(topic) == truth


def restore(engine: Engine, config: EngineConfig) -> Engine:
    """A new engine from the snapshot bytes of every piece of `engine`'s state."""
    restored = Engine(config)
    restored.restarted = True
    restored.router = pickle.loads(pickle.dumps(engine.router))
    restored.ledgers = {b: Ledger.restore(l.snapshot(), config) for b, l in engine.ledgers.items()}
    return restored


def last_availability(outputs: list) -> dict:
    """What a consumer holds last per (sku, channel); never published is 0."""
    last = {}
    for o in outputs:
        if type(o) is AvailabilityChanged:
            last[(o.sku, o.channel)] = (o.available, o.max_line_qty)
    return {k: v for k, v in last.items() if v != (0, 0)}


# -- slow movers over days-long histories --------------------------------------------------

SLOW_SKUS = ["K1", "K2"]
SLOW_FIGURES = re.compile(r"(\d+) units ordered in the \d+ days to \S+ against (\d+) in")


@st.composite
def slow_config(draw):
    """Short windows and low volumes, so days-long histories cross the threshold often."""
    return EngineConfig(
        buckets=draw(st.integers(1, 4)),
        slow_mover_window_days=draw(st.integers(1, 6)),
        slow_mover_drop=draw(st.sampled_from([0.2, 0.4, 0.5, 1.0])),
        slow_mover_min_units=draw(st.integers(1, 12)),
    )


@st.composite
def selling_histories(draw, max_events=120):
    """Plenty of stock (nothing is rejected), then paid orders of K1 / K2 and counts over
    weeks: bursts and silences, ticks of another SKU that move only the clock, events a
    little out of order and redelivered."""
    events = list(MASTER)
    for i, (s, n) in enumerate((s, n) for s in SLOW_SKUS for n in NODES):
        events.append(StockSnapshot(event_id=f"open-{i}", ts=T0, sku=s, node=n,
                                    on_hand=10**9, seq=0))
    t = T0
    for i in range(draw(st.integers(10, max_events))):
        t += timedelta(hours=draw(st.sampled_from([-2, 0, 1, 6, 20, 30, 72, 24 * 9])))
        what = draw(st.sampled_from(["order", "order", "order", "count", "tick"]))
        if what == "order":
            skus = draw(st.lists(st.sampled_from(SLOW_SKUS), min_size=1, max_size=2, unique=True))
            ev = OrderCreated(
                event_id=f"e{i}", ts=t, order_id=f"O{i}", channel="web",
                lines=[OrderLine(line_id=str(j + 1), sku=s, qty=draw(st.integers(1, 8)))
                       for j, s in enumerate(skus)],
                ship_to=ShipTo(region="east", lat=29.0, lon=118.0), fulfillment="ship",
                paid=True,
            )
        else:
            ev = StockSnapshot(event_id=f"e{i}", ts=t, node=draw(node), on_hand=10**9, seq=i + 1,
                               sku="K3" if what == "tick" else draw(st.sampled_from(SLOW_SKUS)))
        events.append(ev)
        if draw(st.integers(0, 9)) == 0:
            events.append(ev)  # redelivered at once: a duplicate, dropped
    return events


def recount_slow_movers(events: list, config: EngineConfig) -> list[tuple]:
    """The rule recounted from the event list alone: (cause, sku, recent, before) of every
    alert. Units ordered per SKU and day of the clock (the highest ts so far); every SKU that
    has sold is judged, on whole days, when the clock enters a new day: caused by the event
    that moved it there, before that event is applied."""
    window, drop, least = (config.slow_mover_window_days, config.slow_mover_drop,
                           config.slow_mover_min_units)
    sold: dict[str, Counter] = {}
    slow: set[str] = set()
    seen, clock, expected = set(), 0, []
    for ev in events:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        day_before = clock // 86_400_000
        clock = max(clock, epoch_ms(ev.ts))
        today = clock // 86_400_000
        for sku_, units in sorted(sold.items()) if today > day_before else ():
            recent = sum(units[d] for d in range(today - window, today))
            before = sum(units[d] for d in range(today - 2 * window, today - window))
            if before >= least:
                if (before - recent) / before >= drop:
                    if sku_ not in slow:
                        expected.append((ev.event_id, sku_, recent, before))
                    slow.add(sku_)
                else:
                    slow.discard(sku_)
        if type(ev) is OrderCreated:
            for line in ev.lines:
                sold.setdefault(line.sku, Counter())[today] += line.qty
    return sorted(expected)


def slow_mover_alerts(outputs: list) -> list[tuple]:
    return sorted(
        (o.cause, o.sku, *map(int, SLOW_FIGURES.match(o.detail).groups()))
        for o in outputs if type(o) is Alert and o.kind == "slow_mover"
    )


@PROPERTY
@given(slow_config(), selling_histories())
def test_slow_movers_are_flagged_exactly_at_the_crossings_a_recount_finds(config, events):
    assert slow_mover_alerts(run(events, config=config)) == recount_slow_movers(events, config)


@PROPERTY
@given(slow_config(), selling_histories(), st.lists(st.integers(1, 30), max_size=8), st.data())
def test_slow_movers_do_not_depend_on_batches_buckets_or_restarts(config, events, chunks, data):
    alone = run(events, config=config)
    assert encoded(run(events, chunks, config), False) == encoded(alone, False)
    one_bucket = msgspec.structs.replace(config, buckets=1)
    assert encoded(run(events, config=one_bucket)) == encoded(run(events, config=config))
    crash_and_restore_resumes_exactly(events, data.draw(st.integers(0, len(events))), config)


# -- the auditor itself: what it must refuse -------------------------------------------------


def _held(cause, node, qty, order="O1", promised_at=None):
    return OrderStatus(ts=T0, cause=cause, order_id=order, line_id="1", sku="K1",
                       status="held", qty=qty, node=node, promised_at=promised_at)


def _audited(*steps, config=None):
    """An auditor fed (input, outputs) pairs: N-EAST and N-SOUTH hold 5 units of K1 each."""
    auditor = Auditor(config=config)
    opening = [StockSnapshot(event_id=f"s{n}", ts=T0, sku="K1", node=n, on_hand=5, seq=1)
               for n in ("N-EAST", "N-SOUTH")]
    order = OrderCreated(event_id="o", ts=T0, order_id="O1", channel="web",
                         lines=[OrderLine(line_id="1", sku="K1", qty=4)],
                         ship_to=ShipTo(region="east", lat=29.0, lon=118.0),
                         fulfillment="ship", paid=False)
    for ev, outputs in [*((ev, []) for ev in opening), (order, []), *steps]:
        auditor.apply_input(ev)
        auditor.apply_outputs(outputs)
        auditor.check(ev.event_id)
    return auditor


def _tick(event_id):
    return StockAdjusted(event_id=event_id, ts=T0, sku="K2", node="N-EAST", delta=1,
                         reason="count")


def test_auditor_takes_one_events_held_statuses_as_the_lines_whole_hold_set():
    auditor = _audited((_tick("e1"), [_held("e1", "N-EAST", 4)]),
                       (_tick("e2"), [_held("e2", "N-SOUTH", 3), _held("e2", "N-EAST", 1)]))
    assert auditor.holds[("O1", "1")] == {"N-SOUTH": 3, "N-EAST": 1}
    assert auditor.committed_at[("K1", "N-EAST")] == 1


def test_auditor_refuses_a_line_held_twice_at_one_node_under_one_event():
    with pytest.raises(PromiseBroken, match="held twice"):
        _audited((_tick("e1"), [_held("e1", "N-EAST", 2), _held("e1", "N-EAST", 2)]))


def test_auditor_refuses_a_held_status_that_is_not_the_lines_last_word():
    expired = OrderStatus(ts=T0, cause="e1", order_id="O1", line_id="1", sku="K1",
                          status="expired", qty=4)
    with pytest.raises(PromiseBroken, match="after its held statuses"):
        _audited((_tick("e1"), [_held("e1", "N-EAST", 4), expired]))


def test_auditor_refuses_a_debt_not_said_as_drift():
    ship = ShipmentConfirmed(event_id="w1", ts=T0, order_id="X", line_id="1", sku="K1",
                             node="N-EAST", qty=7)
    with pytest.raises(PromiseBroken, match="without a drift alert"):
        _audited((ship, []))
    drift = Alert(ts=T0, cause="w1", kind="drift", sku="K1", node="N-EAST", detail="debt")
    assert _audited((ship, [drift])).on_hand[("K1", "N-EAST")] == -2


def test_auditor_counts_inbound_only_beyond_a_debt():
    down = StockAdjusted(event_id="a1", ts=T0, sku="K1", node="N-EAST", delta=-8,
                         reason="damaged")
    drift = Alert(ts=T0, cause="a1", kind="drift", sku="K1", node="N-EAST", detail="debt")
    inbound = SupplyInbound(event_id="i1", ts=T0, supply_id="PO-1", sku="K1", node="N-EAST",
                            qty=4, eta=T0, kind="in_transit")
    # -3 + 4: 1, promised for the inbound's ETA (nothing is promised now against a debt)
    auditor = _audited((down, [drift]), (inbound, [_held("i1", "N-EAST", 1, promised_at=T0)]))
    assert auditor.committed_at[("K1", "N-EAST")] == 1
    with pytest.raises(PromiseBroken, match="committed 2 > supply 1"):
        _audited((down, [drift]), (inbound, [_held("i1", "N-EAST", 2, promised_at=T0)]))
    with pytest.raises(PromiseBroken, match="promises 1 for now .* > on hand -3"):
        _audited((down, [drift]), (inbound, [_held("i1", "N-EAST", 1)]))


def test_auditor_refuses_a_line_promised_for_now_beyond_on_hand_until_it_is_dated():
    count = StockSnapshot(event_id="c1", ts=T0, sku="K1", node="N-EAST", on_hand=2, seq=2)
    inbound = SupplyInbound(event_id="i1", ts=T0, supply_id="PO-1", sku="K1", node="N-EAST",
                            qty=4, eta=T0, kind="in_transit")
    with pytest.raises(PromiseBroken, match="promises 3 for now .* > on hand 2"):
        _audited((count, []), (inbound, [_held("i1", "N-EAST", 3)]))
    auditor = _audited((count, []), (inbound, [_held("i1", "N-EAST", 3, promised_at=T0)]))
    assert auditor.waiting_at[("K1", "N-EAST")] == 3
    drop = StockAdjusted(event_id="a1", ts=T0, sku="K1", node="N-EAST", delta=-1,
                         reason="damaged")
    with pytest.raises(PromiseBroken, match="promises 2 for now .* > on hand 1"):
        _audited((count, []), (inbound, [_held("i1", "N-EAST", 2)]), (drop, []))
    _audited((count, []), (inbound, [_held("i1", "N-EAST", 2)]),
             (drop, [_held("a1", "N-EAST", 2, promised_at=T0)]))


GUARD = EngineConfig(snapshot_guard_share=0.5)


def _count_of_nothing(event_id="s2"):
    """A count of 0 at N-EAST, and the alert saying it was quarantined."""
    count = StockSnapshot(event_id=event_id, ts=T0, sku="K1", node="N-EAST", on_hand=0, seq=2)
    said = Alert(ts=T0, cause=event_id, kind="snapshot_quarantined", sku="K1", node="N-EAST",
                 detail=f"snapshot {event_id} counts 0")
    return count, said


def test_auditor_keeps_on_hand_under_a_quarantined_count_until_it_is_approved():
    count, said = _count_of_nothing()
    found = StockAdjusted(event_id="a1", ts=T0, sku="K1", node="N-EAST", delta=2,
                          reason="found")
    approved = StockSnapshotApproved(event_id="ok", ts=T0, snapshot_event_id="s2")
    auditor = _audited((_tick("e1"), [_held("e1", "N-EAST", 2)]), (count, [said]), (found, []),
                       config=GUARD)
    assert auditor.on_hand[("K1", "N-EAST")] == 7  # the count of 0 is held back
    auditor.apply_input(approved)
    assert auditor.on_hand[("K1", "N-EAST")] == 2  # 0, and the 2 found since
    with pytest.raises(PromiseBroken, match="committed 2 > supply 0"):
        _audited((_tick("e1"), [_held("e1", "N-EAST", 2)]), (count, []), config=GUARD)


def test_auditor_refuses_a_quarantine_where_the_guard_is_off_or_the_drop_small():
    count, said = _count_of_nothing()
    with pytest.raises(PromiseBroken, match="does not judge"):
        _audited((count, [said]))
    small = StockSnapshot(event_id="s3", ts=T0, sku="K1", node="N-EAST", on_hand=3, seq=2)
    said = Alert(ts=T0, cause="s3", kind="snapshot_quarantined", sku="K1", node="N-EAST",
                 detail="snapshot s3 counts 3")
    with pytest.raises(PromiseBroken, match="no more than 50%"):
        _audited((small, [said]), config=GUARD)


def test_auditor_refuses_new_commitments_beyond_a_quarantined_count():
    count, said = _count_of_nothing()
    with pytest.raises(PromiseBroken, match="rose from 2 to 3"):
        _audited((_tick("e1"), [_held("e1", "N-EAST", 2)]), (count, [said]),
                 (_tick("e3"), [_held("e3", "N-EAST", 3)]), config=GUARD)
    auditor = _audited((_tick("e1"), [_held("e1", "N-EAST", 2)]), (count, [said]),
                       (_tick("e3"), [_held("e3", "N-SOUTH", 3)]), config=GUARD)
    assert auditor.committed_at[("K1", "N-SOUTH")] == 3  # another node: not held back
