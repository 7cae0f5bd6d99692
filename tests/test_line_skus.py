"""A shipment or return that names a known order's line with a SKU it does not have is refused.

Events reach ledger buckets by the SKU they name. A `shipment.confirmed` or `order.returned`
naming line 1 of an order with the SKU of its line 2 would reach a bucket that never saw the
line, which would call it shipped or returned while the line's own bucket holds it (or expires
it, or fills it, under the same event). The router knows each order's SKUs and, for an order of
several, each line's (`routing.py`), and dead-letters such an event; an order it does not know
(never seen, or forgotten after retention) may still be shipped or returned outside the engine.
"""

from __future__ import annotations

import pickle
from datetime import timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import (
    OrderCreated,
    OrderLine,
    OrderPaid,
    OrderReturned,
    ShipmentConfirmed,
    ShipTo,
    StockAdjusted,
    StockSnapshot,
    SupplyInbound,
    SupplyReceived,
)
from stockflow.state.outputs import DeadLetter, OrderStatus

from .invariants import audit
from .test_promise import (
    MASTER,
    NODES,
    ORDERS,
    PROPERTY,
    SKUS,
    SUPPLIES,
    T0,
    _kw,
    crash_and_restore_resumes_exactly,
    encoded,
    histories,
    node,
    order_id,
    qty,
    run,
)

# A short inbound horizon: the clock a wrong-SKU event brings may make inbound due in the
# line's own bucket, which then fills the backordered line under that same event.
CONFIG = EngineConfig(buckets=3, inbound_horizon_s=60)


@st.composite
def two_sku_order(draw):
    """An order with one line of each SKU, in either order, or one line of one of them."""
    skus = draw(st.one_of(st.permutations(SKUS), st.lists(st.sampled_from(SKUS), min_size=1,
                                                          max_size=1)))
    return dict(
        type=OrderCreated, order_id=draw(order_id), channel=draw(st.sampled_from(["web", "live"])),
        lines=[OrderLine(line_id=str(i + 1), sku=s, qty=draw(qty)) for i, s in enumerate(skus)],
        ship_to=ShipTo(region="east", lat=29.0, lon=118.0), fulfillment="ship",
        paid=draw(st.booleans()),
    )


line_id = st.sampled_from(["1", "2"])
any_sku = st.sampled_from(SKUS)

# Orders whose lines are of both SKUs, shipments and returns naming either SKU for either line
# (about half of them the wrong one), and supply that fills and expires lines meanwhile.
wrong_sku_body = st.one_of(
    two_sku_order(), two_sku_order(),
    _kw(ShipmentConfirmed, order_id=order_id, line_id=line_id, sku=any_sku, node=node, qty=qty),
    _kw(ShipmentConfirmed, order_id=order_id, line_id=line_id, sku=any_sku, node=node, qty=qty),
    _kw(OrderReturned, order_id=order_id, line_id=line_id, sku=any_sku, node=node, qty=qty,
        restock=st.booleans()),
    _kw(OrderReturned, order_id=order_id, line_id=line_id, sku=any_sku, node=node, qty=qty,
        restock=st.booleans()),
    _kw(OrderPaid, order_id=order_id),
    _kw(SupplyInbound, supply_id=st.sampled_from(SUPPLIES), sku=any_sku, node=node,
        qty=st.integers(0, 5), eta=st.sampled_from([T0 + timedelta(seconds=s)
                                                   for s in (60, 90, 150, 300)]),
        kind=st.just("in_transit")),
    _kw(SupplyReceived, supply_id=st.sampled_from(SUPPLIES), sku=any_sku, node=node, qty=qty),
    _kw(StockAdjusted, sku=any_sku, node=node, delta=st.integers(-3, 4), reason=st.just("count")),
)


@PROPERTY
@given(histories(body=wrong_sku_body, debts=(0, 1)))
def test_no_event_gives_one_line_two_skus(events):
    """The auditor requires it: one event's statuses of a line name one SKU; a shipment or
    return naming a known line with another SKU is refused and changes nothing; no other
    event is refused."""
    audit(events, run(events, config=CONFIG))


@PROPERTY
@given(histories(body=wrong_sku_body), st.data())
def test_the_routers_memory_of_lines_survives_a_restore(events, data):
    crash_and_restore_resumes_exactly(events, data.draw(st.integers(0, len(events))), CONFIG)


@PROPERTY
@given(histories(body=wrong_sku_body), st.integers(1, 8))
def test_refusals_do_not_depend_on_the_bucket_count(events, buckets):
    one = run(events, config=msgspec.structs.replace(CONFIG, buckets=1))
    many = run(events, config=msgspec.structs.replace(CONFIG, buckets=buckets))
    assert encoded(one) == encoded(many)


# -- one story ------------------------------------------------------------------------------

def _order(event_id: str, at_s: int) -> OrderCreated:
    return OrderCreated(
        event_id=event_id, ts=T0 + timedelta(seconds=at_s), order_id="O0", channel="live",
        lines=[OrderLine(line_id="1", sku="K2", qty=2), OrderLine(line_id="2", sku="K1", qty=1)],
        ship_to=ShipTo(region="east", lat=29.0, lon=118.0), fulfillment="ship", paid=True)


def _returned(event_id: str, at_s: int, line: str, sku: str) -> OrderReturned:
    return OrderReturned(event_id=event_id, ts=T0 + timedelta(seconds=at_s), order_id="O0",
                         line_id=line, sku=sku, node="N-EAST", qty=1, restock=True)


def _opening() -> list:
    return [*MASTER, *(StockSnapshot(event_id=f"open-{s}-{n}", ts=T0, sku=s, node=n,
                                     on_hand=5, seq=0) for s in SKUS for n in NODES)]


def _statuses(outputs) -> list[tuple]:
    return [(o.line_id, o.sku, o.status) for o in outputs if type(o) is OrderStatus]


def test_a_return_naming_line_1_with_line_2s_sku_is_a_dead_letter_and_changes_nothing():
    engine = Engine(CONFIG)
    engine.process(_opening())
    assert sorted(_statuses(engine.process([_order("o", 1)]))) == [("1", "K2", "allocated"),
                                                                   ("2", "K1", "allocated")]
    wrong = _returned("r", 2, line="1", sku="K1")
    (dead,) = engine.process([wrong])
    assert type(dead) is DeadLetter and dead.reason == "line_sku_mismatch"
    assert (dead.cause, dead.source) == ("r", "engine")
    assert dead.error == "O0/1 is a line of K2, not of K1"
    assert msgspec.json.decode(dead.raw, type=OrderReturned) == wrong
    assert engine.router.refused == 1
    # nothing moved: the same return naming the right SKU is the line's own, in its bucket
    assert _statuses(engine.process([_returned("r2", 3, line="1", sku="K2")])) == [
        ("1", "K2", "returned")]


def test_a_shipment_of_the_wrong_sku_is_refused_as_well():
    engine = Engine(CONFIG)
    engine.process([*_opening(), _order("o", 1)])
    wrong = ShipmentConfirmed(event_id="s", ts=T0 + timedelta(seconds=2), order_id="O0",
                              line_id="2", sku="K2", node="N-EAST", qty=1)
    assert [o.reason for o in engine.process([wrong])] == ["line_sku_mismatch"]


def test_a_sku_the_order_does_not_have_is_refused_whatever_the_line():
    engine = Engine(CONFIG)
    engine.process(_opening())
    engine.process([OrderCreated(
        event_id="o", ts=T0, order_id="O1", channel="web",
        lines=[OrderLine(line_id="1", sku="K1", qty=1)],
        ship_to=ShipTo(region="east", lat=29.0, lon=118.0), fulfillment="ship", paid=True)])
    for line in ("1", "7"):
        (dead,) = engine.process([OrderReturned(
            event_id=f"r{line}", ts=T0, order_id="O1", line_id=line, sku="K2", node="N-EAST",
            qty=1, restock=False)])
        assert (dead.reason, dead.error) == ("sku_not_in_order", "O1 has no line of K2, only of K1")
    assert engine.router.line_skus == {}  # an order of one SKU: `orders` says it all


def test_a_return_of_an_order_never_seen_is_still_a_return_outside_the_engine():
    engine = Engine(CONFIG)
    engine.process(_opening())
    out = engine.process([_returned("r", 2, line="1", sku="K1")])
    assert _statuses(out) == [("1", "K1", "returned")]
    assert not [o for o in out if type(o) is DeadLetter]


def test_a_line_the_known_order_does_not_have_goes_to_the_sku_it_names_if_the_order_has_it():
    engine = Engine(CONFIG)
    engine.process([*_opening(), _order("o", 1)])
    assert _statuses(engine.process([_returned("r", 2, line="3", sku="K1")])) == [
        ("3", "K1", "returned")]


def test_the_lines_are_forgotten_with_the_order_and_kept_in_the_snapshot():
    config = msgspec.structs.replace(CONFIG, order_retention_s=600)
    engine = Engine(config)
    engine.process([*_opening(), _order("o", 1)])
    restored = pickle.loads(pickle.dumps(engine.router))
    assert restored.line_skus == {"O0": {"1": "K2", "2": "K1"}}
    engine.process([_returned("late", 700, line="1", sku="K2")])  # past retention: forgotten
    assert engine.router.line_skus == {} and engine.router.orders == {}
    # once forgotten, the order's lines are as unknown as an order never seen
    out = engine.process([_returned("later", 701, line="1", sku="K1")])
    assert _statuses(out) == [("1", "K1", "returned")]


def test_a_router_snapshot_from_before_line_skus_restores_knowing_none():
    router = Engine(CONFIG).router
    router.orders = {o: ("K1",) for o in ORDERS}
    state = msgspec.msgpack.decode(router.__getstate__())
    old = pickle.loads(pickle.dumps(router))
    old.__setstate__(msgspec.msgpack.encode(state[:-2]))  # without line_skus and refused
    assert old.orders == router.orders and old.line_skus == {} and old.refused == 0
