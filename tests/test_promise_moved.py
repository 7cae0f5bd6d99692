"""Promise dates that stay true (`promises.py`): what a node promises for now fits in what its
on hand gives, and a line that comes to wait for inbound is told its new date.

The stories: a transfer reserve the placement must count; a count that leaves lines promised
for now beyond the shelf; the inbound they wait for slipping and arriving early; a debt; a
quarantined count. The property: through the promise auditor, after every event of random
histories, the units each node promises for now (held and allocated with `promised_at` null,
and its transfer reserves) fit in its on hand.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockflow.state.book import SkuBook
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import PolicyUpserted, StockAdjusted, SupplyInbound, SupplyReceived
from stockflow.state.ledger import Ledger
from stockflow.state.outputs import Alert, OrderStatus
from stockflow.state.position import Position

from .invariants import audit
from .scenario import DAY, Sim, alerts, of, replenishments
from .test_promise import T0, _kw, event_body, histories, node, qty, sku

SKU = "SKU-X"


def said(outputs: list) -> list[tuple]:
    """(order, status, node, qty, reason, promised_at) of every order.status, in order."""
    return [(o.order_id, o.status, o.node, o.qty, o.reason, o.promised_at)
            for o in of(outputs, OrderStatus)]


def two_dcs() -> Sim:
    sim = Sim()
    e = sim.ev
    sim.feed(e.node("DC-A"), e.node("DC-B", region="Hangzhou", at=(30.27, 120.15)),
             e.channel("web", ["DC-A"]))
    return sim


def test_a_line_beyond_what_is_left_after_a_transfer_reserve_waits_for_the_inbound():
    sim = two_dcs()
    e = sim.ev
    out = sim.feed(e.snapshot(SKU, "DC-A", 10), e.snapshot(SKU, "DC-B", 0),
                   e.policy(SKU, "DC-B", reorder_point=2, order_up_to=4))
    (transfer,) = replenishments(out)
    assert (transfer.from_node, transfer.node, transfer.qty) == ("DC-A", "DC-B", 4)
    po = e.inbound("PO-1", SKU, "DC-A", 5, eta_s=DAY)
    sim.feed(po)
    eta = po.eta
    out = sim.feed(e.order("O-1", [(SKU, 8)], paid=True))
    # 10 on the shelf, 4 of them reserved for DC-B: 6 give now, 2 wait for PO-1
    assert said(out) == [("O-1", "allocated", "DC-A", 8, None, eta)]
    pos = sim.pos(SKU, "DC-A")
    assert (pos.on_hand, pos.allocated, pos.transfer_out, pos.waiting) == (10, 8, 4, 8)


def a_shelf_of_ten_and_three_lines(sim: Sim):
    """DC-A: 10 on hand, PO-1 (6) due in a day; O-1 4 and O-2 3 allocated, O-3 2 held, all
    from the shelf. Returns PO-1's ETA."""
    e = sim.ev
    po = e.inbound("PO-1", SKU, "DC-A", 6, eta_s=DAY)
    sim.feed(e.snapshot(SKU, "DC-A", 10), po)
    out = sim.feed_each(e.order("O-1", [(SKU, 4)], paid=True),
                        e.order("O-2", [(SKU, 3)], paid=True),
                        e.order("O-3", [(SKU, 2)]))
    assert [s[5] for s in said(out)] == [None, None, None]  # all from the shelf
    return po.eta


def test_a_count_below_what_is_promised_for_now_dates_the_lines_that_now_wait():
    sim = two_dcs()
    e = sim.ev
    eta = a_shelf_of_ten_and_three_lines(sim)
    out = sim.feed(e.snapshot(SKU, "DC-A", 5))
    # 9 promised for now, 5 on the shelf, 6 inbound: no shortage, nothing released. The hold
    # (O-3) waits first, then the newest allocation (O-2); the oldest keeps the shelf.
    assert not alerts(out, "shortage")
    assert sorted(said(out)) == [("O-2", "allocated", "DC-A", 3, "promise_moved", eta),
                                 ("O-3", "held", "DC-A", 2, "promise_moved", eta)]
    assert sim.pos(SKU, "DC-A").waiting == 5


def test_an_allocation_keeps_the_shelf_before_a_hold_and_the_dates_follow_the_inbound():
    sim = two_dcs()
    e = sim.ev
    day1 = a_shelf_of_ten_and_three_lines(sim)
    po2 = e.inbound("PO-2", SKU, "DC-A", 10, eta_s=3 * DAY)
    sim.feed(po2)
    day3 = po2.eta
    out = sim.feed(e.adjust(SKU, "DC-A", -4))  # 6 left: O-1 (4) now, O-2 (3) does not fit
    # O-3 (2) fits in the 2 left: its promise holds, and it is told nothing
    assert said(out) == [("O-2", "allocated", "DC-A", 3, "promise_moved", day1)]
    # PO-1 slips past PO-2: O-2's date moves with it
    out = sim.feed(e.inbound("PO-1", SKU, "DC-A", 6, eta_s=3 * DAY + 5))
    assert said(out) == [("O-2", "allocated", "DC-A", 3, "promise_moved", day3)]
    # and arrives early: on the shelf now
    out = sim.feed(e.received("PO-1", SKU, "DC-A", 6))
    assert said(out) == [("O-2", "allocated", "DC-A", 3, "promise_moved", None)]
    assert sim.pos(SKU, "DC-A").waiting == 0


def test_a_shipment_beyond_on_hand_leaves_a_debt_and_everything_there_waits():
    sim = two_dcs()
    e = sim.ev
    day1 = a_shelf_of_ten_and_three_lines(sim)
    po2 = e.inbound("PO-2", SKU, "DC-A", 20, eta_s=2 * DAY)
    sim.feed(po2)
    day2 = po2.eta
    out = sim.feed(e.shipped("O-1", SKU, "DC-A", 12))  # 4 allocated, 12 shipped: on hand -2
    assert alerts(out, "drift")
    # the debt of 2 is paid first by PO-1 (6): O-2 needs 2 + 3 = 5 of it, O-3 then 7: PO-2
    assert said(out)[1:] == [("O-2", "allocated", "DC-A", 3, "promise_moved", day1),
                             ("O-3", "held", "DC-A", 2, "promise_moved", day2)]


def test_a_quarantined_count_dates_what_it_says_is_not_there():
    sim = Sim(snapshot_guard_share=0.5, snapshot_guard_units=0)
    e = sim.ev
    sim.feed(e.node("DC-A"), e.channel("web", ["DC-A"]))
    eta = a_shelf_of_ten_and_three_lines(sim)
    out = sim.feed(e.snapshot(SKU, "DC-A", 2, event_id="count"))
    assert alerts(out, "snapshot_quarantined")
    # if the count is true, 2 give now: the hold O-3 (2) fits, the allocations do not. O-1
    # (4) waits for PO-1 (6); O-2 would need 7 of it: nothing covers it but the ledger's count,
    # which still backs what is committed until the count is decided
    assert said(out) == [("O-1", "allocated", "DC-A", 4, "promise_moved", eta)]
    out = sim.feed(e.rejected("count"))
    assert said(out) == [("O-1", "allocated", "DC-A", 4, "promise_moved", None)]


def test_a_transfer_reserve_beyond_the_shelf_is_taken_back():
    sim = two_dcs()
    e = sim.ev
    out = sim.feed(e.snapshot(SKU, "DC-A", 10), e.snapshot(SKU, "DC-B", 0),
                   e.policy(SKU, "DC-B", reorder_point=2, order_up_to=4))
    (transfer,) = replenishments(out)
    sim.feed(e.inbound("PO-1", SKU, "DC-A", 20, eta_s=DAY))
    out = sim.feed(e.snapshot(SKU, "DC-A", 3))  # supply 23 covers it; the shelf does not
    (taken,) = alerts(out, "transfer_taken_back")
    assert taken.transfer == transfer.command_id and "below its transfer reserves" in taken.detail
    assert sim.pos(SKU, "DC-A").transfer_out == 0
    assert isinstance(taken, Alert)


# -- the property -----------------------------------------------------------------------

# Supply that comes, slips, arrives early and drops, with reorder points opening transfers,
# against orders promised from the shelf and from inbound.
supply_moves = st.one_of(
    _kw(SupplyInbound, supply_id=st.sampled_from(["PO-7", "PO-8"]), sku=sku, node=node,
        qty=st.integers(0, 8), eta=st.sampled_from([T0 + timedelta(hours=h) for h in (1, 5, 30)]),
        kind=st.just("purchase_order")),
    _kw(SupplyReceived, supply_id=st.sampled_from(["PO-7", "PO-8"]), sku=sku, node=node,
        qty=qty),
    _kw(StockAdjusted, sku=sku, node=node, delta=st.integers(-5, -1), reason=st.just("damage")),
    _kw(PolicyUpserted, sku=sku, node=node, safety_stock=st.just(0),
        reorder_point=st.integers(1, 4)),
)
promise_body = st.one_of(event_body, supply_moves, supply_moves)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(body=promise_body))
def test_what_each_node_promises_for_now_fits_in_its_on_hand(events):
    """The auditor checks it after every event (`Auditor.check`): held and allocated units
    with `promised_at` null, and the node's transfer reserves, within its on hand."""
    engine = Engine(EngineConfig(buckets=3))
    outputs = [out for ev in events for out in engine.process([ev])]
    auditor = audit(events, outputs)
    assert auditor.events_checked == len({e.event_id for e in events})


def test_a_snapshot_from_before_waiting_units_were_kept_restores_them_from_the_lines():
    sim = two_dcs()
    e = sim.ev
    a_shelf_of_ten_and_three_lines(sim)
    sim.feed(e.snapshot(SKU, "DC-A", 5))
    ledger = next(l for l in sim.engine.ledgers.values() if SKU in l.books)
    catalog, books = msgspec.msgpack.decode(ledger.snapshot())
    # as written before positions kept `waiting` and books `open_at` (and all after them)
    p_cut = len(Position.__struct_fields__) - Position.__struct_fields__.index("waiting")
    b_cut = len(SkuBook.__struct_fields__) - SkuBook.__struct_fields__.index("open_at")
    older = {k: [{n: p[:-p_cut] for n, p in b[0].items()}, *b[1:-b_cut]]
             for k, b in books.items()}
    book = Ledger.restore(msgspec.msgpack.encode([catalog, older]), sim.engine.config).books[SKU]
    assert book.positions["DC-A"].waiting == 5  # O-2 (3) and O-3 (2) wait for PO-1
    assert book.open_at == {"DC-A": {"O-1": 1, "O-2": 1, "O-3": 1}}
    assert book.waiting_at == {"DC-A": {"O-2": 1, "O-3": 1}}
