"""Sweeps (state/sweep.py): what time alone changes moves with the clock, with no event on the
SKU: late transfers expire, and on a new day protection is republished, backorders it freed
are filled and slow movers judged. The router's side (boundaries, snapshots), then each rule,
then properties over random days-long histories: availability published is always what a
fresh look would publish, transfers never outlive the sweep after their deadline, and
restores and bucket counts change nothing.
"""

from __future__ import annotations

import pickle
from datetime import timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockflow.state.availability import publish_changes
from stockflow.state.book import SkuBook
from stockflow.state.config import EngineConfig
from stockflow.state.emit import Emitter
from stockflow.state.engine import Engine
from stockflow.state.events import (
    ClockTick,
    OrderCreated,
    OrderLine,
    OrderPaid,
    ShipTo,
    StockAdjusted,
    StockSnapshot,
    SupplyInbound,
)
from stockflow.state.routing import Router
from stockflow.state.sweep import Sweep

from .scenario import DAY, T0, Sim, alerts, availability, statuses
from .test_promise import MASTER, NODES, PROPERTY, crash_and_restore_resumes_exactly, encoded, run
from .test_transfers import asked, in_transit, no_transfers_left
from .test_wos import FREE, protected_now, steady_shop, with_wos
from .transfer_scenarios import transfer_histories

K = "SKU-1"
HOUR = 3600.0


# == the router ===========================================================================


def sweeps(work: dict) -> dict[int, list]:
    """bucket -> the sweeps routed to it, with their causes."""
    return {b: [(item[2].event_id, item[3].new_day) for item in items if type(item[3]) is Sweep]
            for b, items in work.items()}


def tick(seconds: float, event_id: str) -> ClockTick:
    return ClockTick(event_id=event_id, ts=T0 + timedelta(seconds=seconds))


def test_every_bucket_is_swept_once_each_time_the_clock_crosses_a_boundary():
    router = Router(EngineConfig(buckets=3, sweep_interval_s=600))
    router.route([tick(0, "t0")])  # the first clock move sweeps (nothing to catch up yet)
    work, _ = router.route([tick(599, "t1"), tick(600, "t2"), tick(1300, "t3"),
                            tick(1250, "t4"), tick(1801, "t5")])
    assert sweeps(work) == {b: [("t2", False), ("t3", False), ("t5", False)] for b in range(3)}
    work, _ = router.route([tick(DAY - 1, "t6"), tick(DAY + 5, "t7")])
    assert sweeps(work) == {b: [("t6", False), ("t7", True)] for b in range(3)}


def test_the_sweep_comes_after_what_else_the_clock_brought_and_before_its_event():
    router = Router(EngineConfig(buckets=1))
    router.route([tick(0, "t0")])
    ev = StockAdjusted(event_id="a", ts=T0 + timedelta(hours=1), sku=K, node="A", delta=1,
                       reason="count")
    work, _ = router.route([ev])
    assert [type(item[3]) for item in work[0]] == [Sweep, StockAdjusted]


def test_the_last_boundary_swept_survives_a_restore_and_older_snapshots_restore():
    router = Router(EngineConfig(buckets=2))
    router.route([tick(HOUR + 1, "t0")])
    restored = pickle.loads(pickle.dumps(router))
    assert restored.swept_ms == router.swept_ms
    assert sweeps(restored.route([tick(HOUR + 2, "t1")])[0]) == {}  # already swept
    # A snapshot of a router before sweeps: its fields from `swept_ms` on are missing, the
    # first clock move after it sweeps.
    older = msgspec.msgpack.encode(msgspec.msgpack.decode(router.__getstate__())[:15])
    old = Router.__new__(Router)
    old.__setstate__(older)
    assert old.swept_ms == 0 and sweeps(old.route([tick(HOUR + 2, "t1")])[0]) == {
        0: [("t1", True)], 1: [("t1", True)]}


@pytest.mark.parametrize("interval", [0, 7000, 86401])
def test_the_sweep_interval_divides_a_day(interval):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"sweep_interval_s": interval}, EngineConfig)


# == transfers ============================================================================


@pytest.mark.parametrize("mover", ["another SKU's event", "a clock tick"])
def test_a_late_transfer_expires_at_the_first_sweep_after_its_deadline(mover):
    sim, req = asked(transfer_ttl_s=HOUR)  # asked a few seconds after T0: due before 2 h
    e = sim.ev
    move = ((lambda s, i: e.adjust("OTHER", "B", 1, ts=s, event_id=i))
            if mover == "another SKU's event" else (lambda s, i: tick(s, i)))
    # A sweep at 1 h, before the deadline; past it, no boundary crossed until 2 h.
    assert not alerts(sim.feed(move(HOUR + 1, "before")), "transfer_expired")
    assert not alerts(sim.feed(move(2 * HOUR - 1, "between")), "transfer_expired")
    assert sim.book(K).transfer(req.command_id) is not None
    out = sim.feed(move(2 * HOUR, "sweep"))
    (expired,) = alerts(out, "transfer_expired")
    assert (expired.transfer, expired.cause) == (req.command_id, "sweep")
    assert in_transit(sim, "A", req.command_id) is None
    # Its reserve at B is back on sale, A's in-transit units are gone: both published now.
    assert no_transfers_left(sim)
    assert availability(out)[(K, "south")] == 50
    assert {o.cause for o in out} == {"sweep"}


def test_a_transfer_shipped_in_time_is_not_swept():
    sim, req = asked(transfer_ttl_s=HOUR)
    sim.feed(sim.ev.transfer_shipped(req.command_id, K, "B", "A", 9))
    assert not sim.feed(tick(10 * DAY, "t"))
    assert in_transit(sim, "A", req.command_id).qty == 9


def test_a_transfer_asked_for_in_the_batch_of_its_sweep_is_swept_too():
    sim = Sim(transfer_ttl_s=60, sweep_interval_s=60)
    e = sim.ev
    out = sim.feed(e.node("A"), e.node("B"), e.channel("web"), e.snapshot(K, "A", 1),
                   e.snapshot(K, "B", 50), e.policy(K, "A", reorder_point=5, ts=30),
                   tick(200, "t"))
    (expired,) = alerts(out, "transfer_expired")
    assert expired.cause == "t"


# == protection over days =================================================================


def test_protection_shrinking_over_days_republishes_availability_at_each_day_boundary():
    sim = steady_shop()  # the shop's last order on day 27; the market sees 200 - protected
    now = 27 * DAY + 60
    market = FREE - protected_now(sim, now)
    assert sim.book("K").published["market"] == market
    for day in range(28, 35):
        out = sim.feed(tick(day * DAY + 5, f"day-{day}"))  # nothing happens to K
        shown = FREE - protected_now(sim, day * DAY + 5)
        assert shown > market  # the shop's rate fell overnight: less is kept from the market
        assert availability(out) == {("K", "market"): shown}
        assert {o.cause for o in out} == {f"day-{day}"}
        market = shown
        assert not sim.feed(tick(day * DAY + 12 * HOUR, f"noon-{day}"))  # once a day


def test_a_backorder_waiting_on_protection_is_filled_when_a_new_day_shrinks_it():
    sim = steady_shop()
    e = sim.ev
    sim.feed(e.channel("outlet", allow_split=True, backorder=True, ts=27 * DAY + 70))
    protected = protected_now(sim, 27 * DAY + 80)
    out = sim.feed(e.order("B1", [("K", FREE - protected + 5)], channel="outlet", paid=True,
                           ts=27 * DAY + 80))
    assert statuses(out)[-1][2] == "backordered"
    day = 28
    while FREE - protected_now(sim, day * DAY) < FREE - protected + 5:
        day += 1
    assert not statuses(sim.feed(tick((day - 1) * DAY + 1, "eve")))
    out = sim.feed(tick(day * DAY + 1, "morning"))
    assert statuses(out) == [("B1", "1", "allocated", "A", FREE - protected + 5)]
    assert {o.cause for o in out} == {"morning"}


def test_without_protection_a_new_day_republishes_nothing():
    sim = steady_shop(protect=False)
    assert not sim.feed(tick(30 * DAY, "t"))


# == properties ===========================================================================


def published_is_fresh(engine: Engine) -> None:
    """Every SKU's last published availability is what publishing it afresh now would say:
    nothing time alone changed waits for an event on the SKU."""
    clock_ms, config = engine.router.clock_ms, engine.config
    horizon_ms = int(config.inbound_horizon_s * 1000)
    for ledger in engine.ledgers.values():
        for sku, book in ledger.books.items():
            late = [t for t in (book.transfers or {}).values()
                    if not t.shipped and t.deadline_ms <= clock_ms]
            if late:
                continue  # expired at the next sweep or event: checked by `transfers_swept`
            copy = msgspec.msgpack.decode(msgspec.msgpack.encode(book), type=SkuBook)
            fresh = Emitter()
            publish_changes(sku, copy, ledger.catalog, clock_ms + horizon_ms, fresh, "fresh",
                            T0, clock_ms=clock_ms, protect=config.wos_protection)
            assert fresh.out == [], (sku, fresh.out)


def transfers_swept(engine: Engine) -> None:
    """No transfer is still open unshipped past its deadline once a sweep came after it."""
    for _, book in engine.books():
        for command_id, t in (book.transfers or {}).items():
            assert t.shipped or t.deadline_ms > engine.router.swept_ms, command_id


SKUS = ["K1", "K2"]


@st.composite
def days_histories(draw, max_events=50):
    """Protecting channels (web, live) over days: orders, payments, counts and inbound
    supply of two SKUs, with ticks and a third SKU's counts that move only the clock, hours
    to days apart, a little out of order and redelivered."""
    events = with_wos(list(MASTER), draw(st.sampled_from([0.5, 1.0, 2.0])),
                      draw(st.sampled_from([1.0, 3.0])))
    for i, (s, n) in enumerate((s, n) for s in SKUS for n in NODES):
        events.append(StockSnapshot(event_id=f"open-{i}", ts=T0, sku=s, node=n,
                                    on_hand=draw(st.integers(0, 30)), seq=0))
    t = T0
    for i in range(draw(st.integers(10, max_events))):
        t += timedelta(hours=draw(st.sampled_from([-1, 0, 1, 5, 13, 24, 40])))
        what = draw(st.sampled_from(["order", "order", "order", "pay", "count", "inbound",
                                     "tick", "other"]))
        sku = draw(st.sampled_from(SKUS))
        if what == "order":
            ev = OrderCreated(
                event_id=f"e{i}", ts=t, order_id=f"O{i}",
                channel=draw(st.sampled_from(["web", "web", "live", "pos"])),
                lines=[OrderLine(line_id="1", sku=sku, qty=draw(st.integers(1, 4)))],
                ship_to=ShipTo(region="east", lat=29.0, lon=118.0), fulfillment="ship",
                paid=draw(st.booleans()))
        elif what == "pay":
            ev = OrderPaid(event_id=f"e{i}", ts=t, order_id=f"O{draw(st.integers(0, i))}")
        elif what == "count":
            ev = StockSnapshot(event_id=f"e{i}", ts=t, sku=sku, node=draw(st.sampled_from(NODES)),
                               on_hand=draw(st.integers(0, 30)), seq=i + 1)
        elif what == "inbound":
            ev = SupplyInbound(event_id=f"e{i}", ts=t, supply_id=f"PO-{i}", sku=sku,
                               node=draw(st.sampled_from(NODES)), qty=draw(st.integers(1, 20)),
                               eta=t + timedelta(days=draw(st.sampled_from([1, 4, 9]))),
                               kind="in_transit")
        elif what == "tick":
            ev = ClockTick(event_id=f"e{i}", ts=t)
        else:
            ev = StockSnapshot(event_id=f"e{i}", ts=t, sku="K3", node="N-EAST", on_hand=1,
                               seq=i + 1)
        events.append(ev)
        if draw(st.integers(0, 9)) == 0:
            events.append(ev)  # redelivered: a duplicate, dropped
    return events


@PROPERTY
@given(days_histories(), st.sampled_from([600, 3600, 86400]))
def test_published_availability_never_waits_for_an_event_on_its_sku(events, interval):
    engine = Engine(EngineConfig(buckets=3, sweep_interval_s=interval))
    for ev in events:
        engine.process([ev])
        published_is_fresh(engine)


@PROPERTY
@given(transfer_histories())
def test_no_transfer_outlives_the_first_sweep_after_its_deadline(history):
    config, events = history
    engine = Engine(config)
    for ev in events:
        swept = engine.router.swept_ms
        engine.process([ev])
        transfers_swept(engine)
        if engine.router.swept_ms != swept:  # in transit comes due at a sweep, not at its ETA
            published_is_fresh(engine)


@PROPERTY
@given(days_histories(), st.data())
def test_a_restore_mid_stream_with_sweeps_in_the_history_changes_nothing(events, data):
    crash_and_restore_resumes_exactly(events, data.draw(st.integers(0, len(events))),
                                      EngineConfig(buckets=3))


@PROPERTY
@given(days_histories(), st.integers(1, 6), st.lists(st.integers(1, 12), max_size=6))
def test_sweeps_do_not_depend_on_buckets_or_batches(events, buckets, chunks):
    one = run(events, config=EngineConfig(buckets=1))
    assert encoded(run(events, config=EngineConfig(buckets=buckets))) == encoded(one)
    assert encoded(run(events, chunks, EngineConfig(buckets=3)), False) == encoded(one, False)


def test_a_transfer_expired_by_a_sweep_leaves_nothing_reserved():
    sim, req = asked(transfer_ttl_s=HOUR)
    sim.feed(tick(3 * HOUR, "t"))
    assert sim.book(K).transfer(req.command_id) is None
    sim.feed(sim.ev.policy(K, "A", reorder_point=None, ts=3 * HOUR + 1))
    sim.feed(tick(6 * HOUR, "t2"))
    assert no_transfers_left(sim)
