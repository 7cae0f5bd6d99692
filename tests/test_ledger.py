"""The ledger's rules, driven through the pure engine one event at a time.

Orders (holds, payment, expiry, backorders, cancel, ship, return), supply (snapshots,
adjustments, inbound), on hand below zero (a debt), duplicates, shortages and the hold sets
they move, the snapshot guard (quarantined counts, approval, rejection), replenishment,
channel availability and max_line_qty, slow movers, the cause of every output, and the
contract's own example run.
"""

from __future__ import annotations

import pickle
import re
from collections import Counter

import msgspec
import pytest

from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import InputEvent
from stockflow.state.ledger import Ledger
from stockflow.state.outputs import (
    AvailabilityChanged,
    DispatchAllocate,
    DispatchRelease,
    OrderStatus,
)
from stockflow.state.read_model import views
from stockflow.state.work import bucket_of

from .scenario import (
    BEIJING,
    DAY,
    GUANGZHOU,
    HANGZHOU,
    SHANGHAI,
    Sim,
    alerts,
    allocations,
    availability,
    max_lines,
    of,
    older_snapshot,
    releases,
    replenishments,
    statuses,
)

K = "SKU-1"
TICK = "SKU-OTHER"  # another SKU, in another bucket: its events only move the clock
from .shared_data import EXAMPLES


def one_node(stock: int | None = 10, **channel) -> Sim:
    """Node A (Shanghai), channel `web` (ttl 60 s unless given), `stock` units of K at A."""
    sim = Sim()
    e = sim.ev
    channel.setdefault("hold_ttl_s", 60)
    sim.feed(e.node("A"), e.channel("web", **channel))
    if stock is not None:
        sim.feed(e.snapshot(K, "A", stock))
    return sim


def two_nodes(a: int, b: int, **channel) -> Sim:
    """Nodes A (Shanghai) and B (Guangzhou), channel `web`, stock of K at each."""
    sim = Sim()
    e = sim.ev
    channel.setdefault("hold_ttl_s", 60)
    sim.feed(
        e.node("A", region="Shanghai", at=SHANGHAI),
        e.node("B", region="Guangdong", at=GUANGZHOU),
        e.channel("web", **channel),
        e.snapshot(K, "A", a),
        e.snapshot(K, "B", b),
    )
    return sim


def committed_within_supply(sim: Sim) -> None:
    """Nothing committed beyond supply, and nothing at all where supply is a debt."""
    for sku, book in sim.engine.books():
        for node, pos in book.positions.items():
            supply = pos.on_hand + pos.inbound_qty
            assert pos.held + pos.allocated <= max(0, supply), (sku, node, pos)
            assert pos.held >= 0 and pos.allocated >= 0, (sku, node, pos)


# == orders: holds and allocations =======================================================


def test_unpaid_order_is_held_without_dispatch():
    sim = one_node(10)
    out = sim.feed(sim.ev.order("O1", [(K, 3)]))
    assert statuses(out) == [("O1", "1", "held", "A", 3)]
    assert not of(out, DispatchAllocate)
    assert (sim.pos(K, "A").held, sim.pos(K, "A").allocated) == (3, 0)
    assert sim.line(K, "O1").status == "held"


def test_paid_order_is_allocated_with_a_dispatch_command():
    sim = one_node(10)
    out = sim.feed(sim.ev.order("O1", [(K, 3)], paid=True, event_id="create-O1"))
    (cmd,) = of(out, DispatchAllocate)
    assert (cmd.order_id, cmd.line_id, cmd.sku, cmd.node, cmd.qty, cmd.channel) == (
        "O1", "1", K, "A", 3, "web"
    )
    assert cmd.command_id
    assert statuses(out) == [("O1", "1", "allocated", "A", 3)]
    assert (sim.pos(K, "A").held, sim.pos(K, "A").allocated) == (0, 3)


def test_each_line_of_an_order_is_placed_on_its_own():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.snapshot("SKU-2", "A", 1))
    out = sim.feed(e.order("O1", [(K, 2), ("SKU-2", 5)], paid=True))
    assert sorted(statuses(out)) == [
        ("O1", "1", "allocated", "A", 2),
        ("O1", "2", "rejected", None, 5),
    ]


def test_paying_a_held_order_allocates_at_the_same_nodes():
    sim = two_nodes(2, 2, allow_split=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ship_to=SHANGHAI, region="Shanghai"))
    out = sim.feed(e.paid("O1"))
    assert sorted(allocations(out)) == [("O1", "1", "A", 2), ("O1", "1", "B", 1)]
    assert sorted(statuses(out)) == [("O1", "1", "allocated", "A", 2),
                                     ("O1", "1", "allocated", "B", 1)]
    assert (sim.pos(K, "A").held, sim.pos(K, "A").allocated) == (0, 2)
    assert (sim.pos(K, "B").held, sim.pos(K, "B").allocated) == (0, 1)


def test_paying_twice_allocates_once():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)]))
    sim.feed(e.paid("O1"))
    out = sim.feed(e.paid("O1"))  # a second payment event (new event_id)
    assert not of(out, DispatchAllocate)
    assert sim.pos(K, "A").allocated == 3


def test_unfillable_line_is_rejected_no_stock():
    sim = one_node(2)
    out = sim.feed(sim.ev.order("O1", [(K, 3)], paid=True))
    (st,) = of(out, OrderStatus)
    assert (st.status, st.reason, st.qty) == ("rejected", "no_stock", 3)


def test_order_for_unknown_channel_is_rejected_unknown_channel():
    sim = one_node(10)
    out = sim.feed(sim.ev.order("O1", [(K, 1)], channel="nope", paid=True))
    (st,) = of(out, OrderStatus)
    assert (st.status, st.reason) == ("rejected", "unknown_channel")
    assert sim.pos(K, "A").allocated == 0


def test_unfillable_line_on_a_backorder_channel_is_backordered():
    sim = one_node(2, backorder=True)
    out = sim.feed(sim.ev.order("O1", [(K, 3)], paid=True))
    assert statuses(out) == [("O1", "1", "backordered", None, 3)]
    assert not of(out, DispatchAllocate)
    assert sim.pos(K, "A").allocated == 0


def test_paid_backorder_is_allocated_when_supply_arrives():
    sim = one_node(2, backorder=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True))
    out = sim.feed(e.adjust(K, "A", +1, "found"))
    assert allocations(out) == [("O1", "1", "A", 3)]
    assert statuses(out) == [("O1", "1", "allocated", "A", 3)]


def test_unpaid_backorder_is_held_when_supply_arrives():
    sim = one_node(0, backorder=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)]))
    out = sim.feed(e.received("PO-9", K, "A", 5))
    assert statuses(out) == [("O1", "1", "held", "A", 3)]
    assert not of(out, DispatchAllocate)


def test_backorder_paid_while_queued_is_allocated_when_supply_arrives():
    sim = one_node(0, backorder=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)]))
    sim.feed(e.paid("O1"))
    out = sim.feed(e.adjust(K, "A", +3))
    assert allocations(out) == [("O1", "1", "A", 3)]


def test_backorders_are_filled_first_come_first_served():
    sim = one_node(0, backorder=True)
    e = sim.ev
    sim.feed(e.order("OLD", [(K, 2)], paid=True))
    sim.feed(e.order("NEW", [(K, 2)], paid=True))
    out = sim.feed(e.adjust(K, "A", +3))
    assert allocations(out) == [("OLD", "1", "A", 2)]
    assert sim.line(K, "NEW").status == "backordered"


def test_backorder_comes_before_a_later_order_when_inbound_enters_the_horizon():
    sim = one_node(0, backorder=True)
    e = sim.ev
    sim.feed(e.inbound("PO-1", K, "A", 5, eta_s=4 * DAY))  # beyond the 3-day horizon
    out = sim.feed(e.order("FIRST", [(K, 5)], paid=True))
    assert statuses(out) == [("FIRST", "1", "backordered", None, 5)]
    e.wait(2 * DAY)  # the ETA is within the horizon now
    out = sim.feed(e.order("LATER", [(K, 5)], paid=True))
    assert sim.line(K, "FIRST").status == "allocated"
    assert sim.line(K, "LATER").status == "backordered"


# == holds expire ========================================================================


def test_hold_expires_when_the_clock_passes_its_deadline():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    out = sim.feed(e.snapshot(TICK, "A", 1, ts=161, event_id="tick"))
    assert statuses(out) == [("O1", "1", "expired", None, 3)]
    st = of(out, OrderStatus)[0]
    assert (st.cause, st.ts) == ("tick", e.at(161))
    assert (sim.pos(K, "A").held, sim.line(K, "O1").status) == (0, "expired")


def test_hold_does_not_expire_before_its_deadline():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    out = sim.feed(e.snapshot(TICK, "A", 1, ts=159))
    assert statuses(out) == []
    assert sim.pos(K, "A").held == 3


def test_an_event_with_an_older_ts_does_not_move_the_clock():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    sim.feed(e.snapshot(TICK, "A", 1, ts=150))
    out = sim.feed(e.snapshot(TICK, "A", 2, ts=10))  # late arrival: clock stays at 150
    assert statuses(out) == []
    assert sim.pos(K, "A").held == 3


def test_expired_units_return_to_atp():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    out = sim.feed(e.order("O2", [(K, 5)], paid=True, ts=200))  # its ts expires O1 first
    assert statuses(out) == [("O1", "1", "expired", None, 3), ("O2", "1", "allocated", "A", 5)]


def test_paid_order_never_expires():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    sim.feed(e.paid("O1", ts=110))
    out = sim.feed(e.snapshot(TICK, "A", 1, ts=1000))
    assert statuses(out) == []
    assert sim.pos(K, "A").allocated == 3


def test_unpaid_backorder_expires_and_leaves_the_queue():
    sim = one_node(0, backorder=True, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    out = sim.feed(e.snapshot(TICK, "A", 1, ts=200))
    assert statuses(out) == [("O1", "1", "expired", None, 3)]
    out = sim.feed(e.adjust(K, "A", +5))
    assert statuses(out) == []
    assert sim.pos(K, "A").held == 0


def test_payment_after_expiry_allocates_afresh_when_there_is_stock():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    out = sim.feed(e.paid("O1", ts=300))  # its own ts expires the hold first
    assert statuses(out) == [("O1", "1", "expired", None, 3), ("O1", "1", "allocated", "A", 3)]
    assert allocations(out) == [("O1", "1", "A", 3)]


def test_payment_after_expiry_is_rejected_when_the_stock_is_gone():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    sim.feed(e.order("O2", [(K, 5)], paid=True, ts=200))
    out = sim.feed(e.paid("O1", ts=210))
    assert statuses(out) == [("O1", "1", "rejected", None, 3)]
    assert not of(out, DispatchAllocate)


def test_payment_after_expiry_is_backordered_on_a_backorder_channel():
    sim = one_node(5, hold_ttl_s=60, backorder=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    sim.feed(e.order("O2", [(K, 5)], paid=True, ts=200))
    out = sim.feed(e.paid("O1", ts=210))
    assert statuses(out) == [("O1", "1", "backordered", None, 3)]


def test_cancelled_order_does_not_expire_later():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], ts=100))
    sim.feed(e.cancelled("O1", ts=110))
    out = sim.feed(e.snapshot(TICK, "A", 1, ts=500))
    assert statuses(out) == []
    assert sim.line(K, "O1").status == "cancelled"


def test_partly_cancelled_order_still_expires_its_other_lines():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 1), (K, 2)], ts=100))
    sim.feed(e.cancelled("O1", line_ids=["1"], ts=110))
    out = sim.feed(e.snapshot(TICK, "A", 1, ts=500))
    assert statuses(out) == [("O1", "2", "expired", None, 2)]
    assert sim.pos(K, "A").held == 0


def test_order_spanning_buckets_is_paid_as_a_whole():
    sim = one_node(5)
    e = sim.ev
    sim.feed(e.snapshot("SKU-2", "A", 5))
    sim.feed(e.order("O1", [(K, 1), ("SKU-2", 2)]))
    out = sim.feed(e.paid("O1"))
    assert sorted(allocations(out)) == [("O1", "1", "A", 1), ("O1", "2", "A", 2)]


def test_order_spanning_buckets_expires_as_a_whole():
    sim = one_node(5, hold_ttl_s=60)
    e = sim.ev
    sim.feed(e.snapshot("SKU-2", "A", 5))
    sim.feed(e.order("O1", [(K, 1), ("SKU-2", 2)], ts=100))
    out = sim.feed(e.snapshot(TICK, "A", 1, ts=200))
    assert sorted(statuses(out)) == [("O1", "1", "expired", None, 1),
                                     ("O1", "2", "expired", None, 2)]
    assert sim.pos(K, "A").held == sim.pos("SKU-2", "A").held == 0


# == cancel, ship, return ================================================================


def test_cancelling_a_held_order_releases_the_hold_without_a_dispatch():
    sim = one_node(5)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)]))
    out = sim.feed(e.cancelled("O1"))
    assert statuses(out) == [("O1", "1", "cancelled", None, 3)]
    assert not of(out, DispatchRelease)
    assert sim.pos(K, "A").held == 0


def test_cancelling_an_allocated_order_sends_a_release():
    sim = one_node(5)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True))
    out = sim.feed(e.cancelled("O1"))
    assert releases(out) == [("O1", "1", "A", 3, "cancelled")]
    assert statuses(out) == [("O1", "1", "cancelled", None, 3)]
    assert sim.pos(K, "A").allocated == 0


def test_cancelling_a_split_allocation_releases_every_node():
    sim = two_nodes(2, 2, allow_split=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True, region="Shanghai", ship_to=SHANGHAI))
    out = sim.feed(e.cancelled("O1"))
    assert sorted(releases(out)) == [("O1", "1", "A", 2, "cancelled"),
                                     ("O1", "1", "B", 1, "cancelled")]
    assert sim.pos(K, "A").allocated == sim.pos(K, "B").allocated == 0


def test_cancelling_some_lines_leaves_the_others():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 2), (K, 3)], paid=True))
    out = sim.feed(e.cancelled("O1", line_ids=["2"]))
    assert releases(out) == [("O1", "2", "A", 3, "cancelled")]
    assert sim.line(K, "O1", "1").status == "allocated"
    assert sim.pos(K, "A").allocated == 2


def test_cancelling_a_shipped_line_leaves_it_shipped():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 2), (K, 3)], paid=True))
    sim.feed(e.shipped("O1", K, "A", 2, line_id="1"))
    out = sim.feed(e.cancelled("O1"))
    assert releases(out) == [("O1", "2", "A", 3, "cancelled")]
    assert statuses(out) == [("O1", "2", "cancelled", None, 3)]
    assert sim.line(K, "O1", "1").status == "shipped"
    assert sim.pos(K, "A").on_hand == 8


def test_cancelling_a_backorder_takes_it_out_of_the_queue():
    sim = one_node(0, backorder=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True))
    sim.feed(e.cancelled("O1"))
    out = sim.feed(e.adjust(K, "A", +5))
    assert not of(out, DispatchAllocate)
    assert sim.line(K, "O1").status == "cancelled"


def test_shipment_lowers_on_hand_and_the_allocation():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True))
    out = sim.feed(e.shipped("O1", K, "A", 3))
    assert statuses(out) == [("O1", "1", "shipped", "A", 3)]
    pos = sim.pos(K, "A")
    assert (pos.on_hand, pos.allocated) == (7, 0)
    assert sim.line(K, "O1").status == "shipped"


def test_shipment_does_not_change_what_others_can_buy():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True))
    out = sim.feed(e.shipped("O1", K, "A", 3))
    assert of(out, AvailabilityChanged) == []  # ATP 7 before and after


def test_restocked_return_raises_on_hand():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True))
    sim.feed(e.shipped("O1", K, "A", 3))
    out = sim.feed(e.returned("O1", K, "A", 2, restock=True))
    assert statuses(out) == [("O1", "1", "returned", "A", 2)]
    assert sim.pos(K, "A").on_hand == 9
    assert sim.line(K, "O1").status == "returned"


def test_return_without_restock_leaves_on_hand():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True))
    sim.feed(e.shipped("O1", K, "A", 3))
    out = sim.feed(e.returned("O1", K, "A", 2, restock=False))
    assert statuses(out) == [("O1", "1", "returned", "A", 2)]
    assert sim.pos(K, "A").on_hand == 7


# == duplicates ==========================================================================


def test_same_event_id_twice_has_no_second_effect():
    sim = one_node(10)
    e = sim.ev
    created = e.order("O1", [(K, 3)], paid=True)
    assert allocations(sim.feed(created))
    assert sim.feed(created) == []
    assert sim.pos(K, "A").allocated == 3


def test_duplicate_adjustment_is_applied_once():
    sim = one_node(10)
    adj = sim.ev.adjust(K, "A", +4)
    sim.feed(adj)
    assert sim.feed(adj) == []
    assert sim.pos(K, "A").on_hand == 14


def test_duplicate_within_one_batch_is_applied_once():
    sim = one_node(10)
    adj = sim.ev.adjust(K, "A", -4)
    sim.feed(adj, adj)
    assert sim.pos(K, "A").on_hand == 6


def test_order_resent_under_a_new_event_id_has_no_effect():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True))
    out = sim.feed(e.order("O1", [(K, 3)], paid=True))
    assert out == []
    assert sim.pos(K, "A").allocated == 3


# == supply ==============================================================================


def test_snapshot_sets_on_hand():
    sim = one_node(10)
    sim.feed(sim.ev.snapshot(K, "A", 4, seq=1000))
    assert sim.pos(K, "A").on_hand == 4


def test_snapshot_with_an_older_seq_is_ignored():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 10, seq=5))
    out = sim.feed(e.snapshot(K, "A", 3, seq=4))
    assert out == []
    assert sim.pos(K, "A").on_hand == 10


def test_snapshot_with_the_same_seq_is_ignored():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 10, seq=5))
    out = sim.feed(e.snapshot(K, "A", 3, seq=5))
    assert out == []
    assert sim.pos(K, "A").on_hand == 10


def test_snapshot_seq_is_per_sku_and_node():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.node("B", region="Guangdong", at=GUANGZHOU))
    sim.feed(e.snapshot(K, "A", 10, seq=50))
    sim.feed(e.snapshot(K, "B", 7, seq=1))  # B's own sequence, not A's
    sim.feed(e.snapshot("SKU-2", "A", 4, seq=1))
    assert (sim.pos(K, "A").on_hand, sim.pos(K, "B").on_hand) == (10, 7)
    assert sim.pos("SKU-2", "A").on_hand == 4


def test_adjustment_adds_its_delta():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.adjust(K, "A", +5, "found"))
    sim.feed(e.adjust(K, "A", -3, "damaged"))
    assert sim.pos(K, "A").on_hand == 12


def test_inbound_is_an_upsert_per_supply_id():
    sim = one_node(0)
    e = sim.ev
    sim.feed(e.inbound("PO-1", K, "A", 10, eta_s=DAY))
    sim.feed(e.inbound("PO-1", K, "A", 4, eta_s=DAY))  # revised, not added
    out = sim.feed(e.order("O1", [(K, 5)], paid=True))
    assert statuses(out) == [("O1", "1", "rejected", None, 5)]
    out = sim.feed(e.order("O2", [(K, 4)], paid=True))
    assert allocations(out) == [("O2", "1", "A", 4)]


def test_received_supply_moves_from_inbound_to_on_hand():
    sim = one_node(2)
    e = sim.ev
    sim.feed(e.inbound("PO-1", K, "A", 10, eta_s=DAY))
    sim.feed(e.received("PO-1", K, "A", 6))
    pos = sim.pos(K, "A")
    assert (pos.on_hand, pos.inbound_qty) == (8, 4)
    sim.feed(e.received("PO-1", K, "A", 4))
    assert (pos.on_hand, pos.inbound_qty) == (12, 0)


def test_receiving_inbound_does_not_change_availability_within_the_horizon():
    sim = one_node(2)
    e = sim.ev
    sim.feed(e.inbound("PO-1", K, "A", 10, eta_s=DAY))
    out = sim.feed(e.received("PO-1", K, "A", 10))
    assert of(out, AvailabilityChanged) == []


# == on hand below zero: a debt ==========================================================


def test_shipment_beyond_on_hand_leaves_a_debt_said_as_drift():
    sim = one_node(3)
    out = sim.feed(sim.ev.shipped("WMS-1", K, "A", 5))
    assert sim.pos(K, "A").on_hand == -2
    (drift,) = alerts(out, "drift")
    assert (drift.sku, drift.node) == (K, "A")
    assert "debt of 2" in drift.detail
    assert alerts(out, "shortage") == []  # nothing was committed there
    assert availability(out) == {(K, "web"): 0}


def test_adjustment_below_zero_is_a_debt_too():
    sim = one_node(3)
    out = sim.feed(sim.ev.adjust(K, "A", -7, "damaged"))
    assert sim.pos(K, "A").on_hand == -4
    assert len(alerts(out, "drift")) == 1


def test_receipts_pay_the_debt_first():
    sim = one_node(2)
    e = sim.ev
    sim.feed(e.shipped("WMS-1", K, "A", 5))  # on hand -3
    out = sim.feed(e.received("PO-1", K, "A", 2))
    assert sim.pos(K, "A").on_hand == -1
    assert alerts(out, "drift") == []  # a receipt pays; it makes no debt
    assert statuses(sim.feed(e.order("O1", [(K, 1)], paid=True))) == [
        ("O1", "1", "rejected", None, 1)]
    out = sim.feed(e.received("PO-2", K, "A", 5))
    assert sim.pos(K, "A").on_hand == 4  # 3 of the 5 paid what was owed
    assert availability(out) == {(K, "web"): 4}
    assert allocations(sim.feed(e.order("O2", [(K, 4)], paid=True))) == [("O2", "1", "A", 4)]
    assert statuses(sim.feed(e.order("O3", [(K, 1)], paid=True)))[0][2] == "rejected"


def test_found_units_and_restocked_returns_pay_the_debt_first():
    sim = one_node(0)
    e = sim.ev
    sim.feed(e.adjust(K, "A", -4, "cycle_count"))
    sim.feed(e.adjust(K, "A", +3, "found"))
    sim.feed(e.returned("R1", K, "A", 2, restock=True))
    assert sim.pos(K, "A").on_hand == 1


def test_inbound_counts_only_beyond_the_debt():
    sim = one_node(0)
    e = sim.ev
    sim.feed(e.shipped("WMS-1", K, "A", 3))
    out = sim.feed(e.inbound("PO-1", K, "A", 5, eta_s=DAY))
    assert availability(out) == {(K, "web"): 2}
    assert statuses(sim.feed(e.order("O1", [(K, 3)], paid=True)))[0][2] == "rejected"
    assert allocations(sim.feed(e.order("O2", [(K, 2)], paid=True))) == [("O2", "1", "A", 2)]
    committed_within_supply(sim)


def test_a_debt_takes_back_everything_committed_at_the_node():
    sim = two_nodes(4, 0)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 2)], paid=True), e.order("O2", [(K, 1)]))
    out = sim.feed(e.adjust(K, "A", -6, "damaged"))  # on hand -2: nothing can stay promised
    assert {a.kind for a in alerts(out)} >= {"drift", "shortage"}
    assert releases(out) == [("O1", "1", "A", 2, "shortage")]
    assert sorted(st[2] for st in statuses(out)) == ["rejected", "rejected"]
    assert (sim.pos(K, "A").held, sim.pos(K, "A").allocated) == (0, 0)
    committed_within_supply(sim)


def test_a_debt_at_one_node_does_not_lower_what_other_nodes_sell():
    sim = two_nodes(3, 4)
    e = sim.ev
    out = sim.feed(e.shipped("WMS-1", K, "A", 6))  # A owes 3
    assert availability(out) == {(K, "web"): 4}
    assert max_lines(out) == {(K, "web"): 4}
    assert allocations(sim.feed(e.order("O1", [(K, 4)], paid=True))) == [("O1", "1", "B", 4)]


def test_the_next_snapshot_sets_the_count_again():
    sim = one_node(1)
    e = sim.ev
    sim.feed(e.shipped("WMS-1", K, "A", 4))  # on hand -3
    out = sim.feed(e.snapshot(K, "A", 5, seq=1000))
    assert sim.pos(K, "A").on_hand == 5
    (drift,) = alerts(out, "drift")
    assert "ledger -3" in drift.detail
    assert availability(out) == {(K, "web"): 5}


# == shortage ============================================================================


def test_negative_adjustment_below_commitments_raises_a_shortage_alert():
    sim = one_node(5)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 4)], paid=True))
    out = sim.feed(e.adjust(K, "A", -3, "damaged"))
    (alert,) = alerts(out, "shortage")
    assert (alert.sku, alert.node) == (K, "A")
    committed_within_supply(sim)


def test_no_shortage_alert_while_supply_still_covers_commitments():
    sim = one_node(5)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 4)], paid=True))
    out = sim.feed(e.adjust(K, "A", -1))
    assert alerts(out, "shortage") == []
    assert sim.pos(K, "A").allocated == 4


def test_shortage_takes_holds_before_allocations():
    sim = one_node(4)
    e = sim.ev
    sim.feed(e.order("PAID", [(K, 2)], paid=True))
    sim.feed(e.order("HELD", [(K, 2)]))  # older allocation, newer hold: the hold goes
    out = sim.feed(e.adjust(K, "A", -1))
    assert statuses(out) == [("HELD", "1", "rejected", None, 2)]
    assert sim.line(K, "PAID").status == "allocated"
    assert of(out, DispatchRelease) == []


def test_shortage_takes_holds_before_allocations_even_older_holds():
    sim = one_node(4)
    e = sim.ev
    sim.feed(e.order("HELD", [(K, 2)]))
    sim.feed(e.order("PAID", [(K, 2)], paid=True))
    out = sim.feed(e.adjust(K, "A", -1))
    assert statuses(out) == [("HELD", "1", "rejected", None, 2)]
    assert sim.line(K, "PAID").status == "allocated"


def test_shortage_takes_the_newest_order_first():
    sim = one_node(6)
    e = sim.ev
    sim.feed(e.order("OLD", [(K, 3)], paid=True))
    sim.feed(e.order("NEW", [(K, 3)], paid=True))
    out = sim.feed(e.adjust(K, "A", -2))
    assert releases(out) == [("NEW", "1", "A", 3, "shortage")]
    assert statuses(out) == [("NEW", "1", "rejected", None, 3)]
    assert sim.line(K, "OLD").status == "allocated"
    committed_within_supply(sim)


def test_shortage_resources_an_allocation_at_another_node():
    sim = two_nodes(3, 5)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], paid=True, region="Shanghai", ship_to=SHANGHAI))
    assert sim.line(K, "O1").parts == {"A": 3}
    out = sim.feed(e.snapshot(K, "A", 1))
    assert alerts(out, "shortage")[0].node == "A"
    assert releases(out) == [("O1", "1", "A", 3, "shortage")]
    assert allocations(out) == [("O1", "1", "B", 3)]
    assert (sim.pos(K, "A").allocated, sim.pos(K, "B").allocated) == (0, 3)
    assert sim.line(K, "O1").status == "allocated"
    committed_within_supply(sim)


def test_shortage_moves_a_hold_to_another_node():
    sim = two_nodes(3, 5)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 3)], region="Shanghai", ship_to=SHANGHAI))
    out = sim.feed(e.adjust(K, "A", -3))
    assert statuses(out) == [("O1", "1", "held", "B", 3)]
    assert not of(out, DispatchRelease) and not of(out, DispatchAllocate)
    assert (sim.pos(K, "A").held, sim.pos(K, "B").held) == (0, 3)


def test_a_hold_moved_twice_under_one_event_is_named_once_at_its_new_node():
    """One input event expires O1 and O2 (O3's backorder takes A), then empties A (O3 moves
    to B): O3's held statuses from that event name B only."""
    sim = two_nodes(2, 2, backorder=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 2)], region="Shanghai", ship_to=SHANGHAI, ts=10))  # held at A
    sim.feed(e.order("O2", [(K, 2)], region="Shanghai", ship_to=SHANGHAI, ts=11))  # held at B
    sim.feed(e.order("O3", [(K, 2)], region="Shanghai", ship_to=SHANGHAI, ts=50))  # queued
    out = sim.feed(e.adjust(K, "A", -2, ts=100))  # past O1's and O2's deadlines, not O3's
    assert [st for st in statuses(out) if st[0] == "O3"] == [("O3", "1", "held", "B", 2)]
    assert sim.line(K, "O3").parts == {"B": 2}
    assert not of(out, DispatchRelease)  # a hold was never dispatched: nothing to release


def test_a_split_hold_moved_away_names_only_its_new_nodes():
    sim = three_nodes_split(a=3, b=4, c=2)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 5)], region="Shanghai", ship_to=SHANGHAI))
    assert sim.line(K, "O1").parts == {"A": 3, "C": 2}
    out = sim.feed(e.adjust(K, "A", -3))
    assert sorted(statuses(out)) == [("O1", "1", "held", "B", 3), ("O1", "1", "held", "C", 2)]


def test_a_split_hold_partly_moved_lists_every_node_it_is_held_at():
    sim = three_nodes_split(a=3, b=4, c=2)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 5)], region="Shanghai", ship_to=SHANGHAI))
    out = sim.feed(e.adjust(K, "A", -2))
    assert sorted(statuses(out)) == [
        ("O1", "1", "held", "A", 1), ("O1", "1", "held", "B", 2), ("O1", "1", "held", "C", 2)]


def three_nodes_split(a: int, b: int, c: int) -> Sim:
    """A (Shanghai), B (Guangzhou), C (Beijing, nearer Shanghai than B); lines may split."""
    sim = Sim()
    e = sim.ev
    sim.feed(
        e.node("A", region="Shanghai", at=SHANGHAI),
        e.node("B", region="Guangdong", at=GUANGZHOU),
        e.node("C", region="Beijing", at=BEIJING),
        e.channel("web", hold_ttl_s=60, allow_split=True),
        e.snapshot(K, "A", a), e.snapshot(K, "B", b), e.snapshot(K, "C", c),
    )
    return sim


def test_shortage_that_cannot_be_resourced_backorders_on_a_backorder_channel():
    sim = one_node(5, backorder=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 4)], paid=True))
    out = sim.feed(e.adjust(K, "A", -2))
    assert releases(out) == [("O1", "1", "A", 4, "shortage")]
    assert statuses(out) == [("O1", "1", "backordered", None, 4)]
    out = sim.feed(e.adjust(K, "A", +1))  # 4 units again: the backorder is filled
    assert allocations(out) == [("O1", "1", "A", 4)]


def test_shortage_that_cannot_be_resourced_is_rejected_otherwise():
    sim = one_node(5)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 4)], paid=True))
    out = sim.feed(e.adjust(K, "A", -2))
    (st,) = of(out, OrderStatus)
    assert (st.status, st.qty) == ("rejected", 4)
    assert sim.pos(K, "A").allocated == 0


def test_lower_inbound_is_a_shortage_too():
    sim = one_node(0)
    e = sim.ev
    sim.feed(e.inbound("PO-1", K, "A", 10, eta_s=DAY))
    sim.feed(e.order("O1", [(K, 8)], paid=True))
    out = sim.feed(e.inbound("PO-1", K, "A", 5, eta_s=DAY))
    assert [a.node for a in alerts(out, "shortage")] == ["A"]
    assert sim.line(K, "O1").status == "rejected"
    committed_within_supply(sim)


def test_after_a_shortage_no_node_is_over_committed():
    sim = two_nodes(6, 2, allow_split=True, backorder=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 2)], paid=True, region="Shanghai", ship_to=SHANGHAI))
    sim.feed(e.order("O2", [(K, 2)], region="Shanghai", ship_to=SHANGHAI))
    sim.feed(e.order("O3", [(K, 3)], paid=True, region="Shanghai", ship_to=SHANGHAI))
    assert sim.pos(K, "A").held + sim.pos(K, "A").allocated == 6
    sim.feed(e.snapshot(K, "A", 1))
    committed_within_supply(sim)
    assert sum(p.held + p.allocated for p in sim.book(K).positions.values()) <= 3


def test_split_line_that_cannot_be_resourced_is_released_whole_under_one_id_per_command():
    sim = one_node(5, allow_split=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 5)], paid=True))
    out = sim.feed(e.adjust(K, "A", -2))
    released = of(out, DispatchRelease)
    assert sum(r.qty for r in released) == 5  # a line is filled completely or not at all
    ids = [r.command_id for r in released]
    assert len(ids) == len(set(ids))
    assert statuses(out) == [("O1", "1", "rejected", None, 5)]


def test_split_line_resources_only_the_missing_units():
    sim = two_nodes(5, 5, allow_split=True)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 5)], paid=True, region="Shanghai", ship_to=SHANGHAI))
    out = sim.feed(e.adjust(K, "A", -2))
    assert releases(out) == [("O1", "1", "A", 2, "shortage")]
    assert allocations(out) == [("O1", "1", "B", 2)]
    assert sim.line(K, "O1").parts == {"A": 3, "B": 2}


# == replenishment =======================================================================


def test_policy_alone_requests_no_replenishment_before_stock_is_reported():
    sim = one_node(None)
    out = sim.feed(sim.ev.policy(K, "A", safety_stock=2, reorder_point=5))
    assert replenishments(out) == [] and alerts(out, "low_stock") == []


def test_falling_below_the_reorder_point_requests_one_replenishment():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.policy(K, "A", reorder_point=5))
    assert replenishments(sim.feed(e.snapshot(K, "A", 8))) == []
    out = sim.feed(e.order("O1", [(K, 4)], paid=True))  # ATP 4 < 5
    (req,) = replenishments(out)
    assert (req.sku, req.node, req.from_node) == (K, "A", None)
    assert req.qty > 0 and req.command_id
    (low,) = alerts(out, "low_stock")
    assert (low.sku, low.node) == (K, "A")


def test_first_report_below_the_reorder_point_requests_replenishment():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.policy(K, "A", reorder_point=5))
    out = sim.feed(e.snapshot(K, "A", 2))
    assert [(r.node, r.from_node) for r in replenishments(out)] == [("A", None)]


def test_open_replenishment_is_not_repeated():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.policy(K, "A", reorder_point=5), e.snapshot(K, "A", 4))
    for event in (e.adjust(K, "A", -1), e.order("O1", [(K, 2)], paid=True)):
        out = sim.feed(event)
        assert replenishments(out) == [] and alerts(out, "low_stock") == []


def test_replenishment_reopens_after_atp_recovered():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.policy(K, "A", reorder_point=5), e.snapshot(K, "A", 4))
    assert replenishments(sim.feed(e.adjust(K, "A", +1))) == []  # ATP 5: closed
    assert len(replenishments(sim.feed(e.adjust(K, "A", -1)))) == 1


def test_replenishment_transfers_from_the_nearest_node_with_surplus():
    sim = Sim()
    e = sim.ev
    sim.feed(
        e.node("DC-SH", region="Shanghai", at=SHANGHAI),
        e.node("ST-HZ", region="Zhejiang", at=HANGZHOU),
        e.node("DC-GZ", region="Guangdong", at=GUANGZHOU),
        e.node("DC-BJ", region="Beijing", at=BEIJING),
        e.channel("web"),
        e.snapshot(K, "ST-HZ", 12),  # ~165 km, but its surplus over its own point is 2
        e.snapshot(K, "DC-BJ", 100),  # ~1070 km
        e.snapshot(K, "DC-GZ", 200),  # ~1210 km, the largest surplus
        e.policy(K, "ST-HZ", reorder_point=10),
        e.policy(K, "DC-SH", reorder_point=5),
    )
    out = sim.feed(e.snapshot(K, "DC-SH", 1))  # asks for 2 x 5 - 1 = 9
    (req,) = replenishments(out)
    assert (req.node, req.qty, req.from_node) == ("DC-SH", 9, "DC-BJ")


def test_replenishment_is_a_purchase_when_no_node_has_enough_surplus():
    sim = two_nodes(1, 9)  # B could spare 9, A asks for 2 x 5 - 1 = 9...
    e = sim.ev
    sim.feed(e.policy(K, "B", reorder_point=1))  # ...but B keeps 1: its surplus is 8
    out = sim.feed(e.policy(K, "A", reorder_point=5))
    (req,) = replenishments(out)
    assert (req.node, req.qty, req.from_node) == ("A", 9, None)


def test_safety_stock_counts_against_the_reorder_point():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 8))
    out = sim.feed(e.policy(K, "A", safety_stock=4, reorder_point=5))  # ATP 4
    assert len(replenishments(out)) == 1


def test_stock_reported_by_adjustments_then_gone_requests_replenishment():
    sim = one_node(None)
    e = sim.ev
    sim.feed(e.policy(K, "A", reorder_point=3))
    assert replenishments(sim.feed(e.adjust(K, "A", +5, "found"))) == []
    out = sim.feed(e.adjust(K, "A", -5, "damaged"))
    assert [(r.node, r.from_node) for r in replenishments(out)] == [("A", None)]


# == availability ========================================================================


def test_availability_is_the_pooled_atp_of_the_channels_nodes():
    sim = Sim()
    e = sim.ev
    sim.feed(
        e.node("A"), e.node("B", at=GUANGZHOU, region="Guangdong"), e.node("C", at=BEIJING),
        e.channel("all", ["*"]), e.channel("south", ["B"]),
    )
    out = sim.feed(e.snapshot(K, "A", 10), e.snapshot(K, "B", 4), e.snapshot(K, "C", 1))
    assert availability(out) == {(K, "all"): 15, (K, "south"): 4}


def test_availability_skips_inactive_nodes():
    sim = two_nodes(10, 4)
    out = sim.feed(sim.ev.node("B", region="Guangdong", at=GUANGZHOU, active=False))
    assert availability(out) == {(K, "web"): 10}


def test_negative_atp_at_one_node_does_not_reduce_the_pool():
    sim = two_nodes(10, 1)
    out = sim.feed(sim.ev.policy(K, "B", safety_stock=5))  # B's ATP is -4, counted as 0
    assert availability(out) == {(K, "web"): 10}


def test_max_line_qty_is_the_largest_node_atp_where_lines_do_not_split():
    sim = Sim()
    e = sim.ev
    sim.feed(
        e.node("A"), e.node("B", at=GUANGZHOU, region="Guangdong"),
        e.channel("whole", ["*"]), e.channel("split", ["*"], allow_split=True),
    )
    out = sim.feed(e.snapshot(K, "A", 10), e.snapshot(K, "B", 4))
    assert availability(out) == {(K, "whole"): 14, (K, "split"): 14}
    assert max_lines(out) == {(K, "whole"): 10, (K, "split"): 14}


def test_max_line_qty_is_what_one_line_can_be_filled_with():
    sim = two_nodes(6, 4)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 2)]))  # held at A: 4 left there
    out = sim.feed(e.adjust(K, "B", +1))
    (changed,) = of(out, AvailabilityChanged)
    assert (changed.available, changed.max_line_qty) == (9, 5)
    assert statuses(sim.feed(e.order("O2", [(K, 6)], paid=True)))[0][2] == "rejected"
    assert allocations(sim.feed(e.order("O3", [(K, 5)], paid=True))) == [("O3", "1", "B", 5)]


def test_max_line_qty_counts_only_nodes_a_ship_line_can_come_from():
    sim = Sim()
    e = sim.ev
    sim.feed(
        e.node("A"), e.node("ST", kind="store", can_ship=False, can_pickup=True),
        e.channel("web", ["*"]),
    )
    out = sim.feed(e.snapshot(K, "A", 3), e.snapshot(K, "ST", 8))
    assert availability(out) == {(K, "web"): 11}
    assert max_lines(out) == {(K, "web"): 3}  # the store's 8 go only to pickup lines


def test_max_line_qty_moving_alone_is_published():
    sim = two_nodes(5, 5)
    e = sim.ev
    out = sim.feed(e.adjust(K, "A", +2), e.adjust(K, "B", -2))
    (changed,) = of(out, AvailabilityChanged)
    assert (changed.available, changed.max_line_qty) == (10, 7)
    assert b'"max_line_qty":7' in msgspec.json.encode(changed)


def test_availability_follows_holds():
    sim = one_node(10)
    out = sim.feed(sim.ev.order("O1", [(K, 3)]))
    assert availability(out) == {(K, "web"): 7}


def test_availability_is_coalesced_per_batch():
    sim = one_node(10)
    e = sim.ev
    out = sim.feed(e.adjust(K, "A", +5), e.order("O1", [(K, 3)]), e.adjust(K, "A", -1))
    changes = [(o.channel, o.available) for o in of(out, AvailabilityChanged)]
    assert changes == [("web", 11)]


def test_no_availability_change_when_a_batch_nets_to_zero():
    sim = one_node(10)
    e = sim.ev
    out = sim.feed(e.adjust(K, "A", +5), e.adjust(K, "A", -5))
    assert of(out, AvailabilityChanged) == []


def test_no_availability_change_when_nothing_sellable_moved():
    sim = one_node(10)
    out = sim.feed(sim.ev.inbound("PO-1", K, "A", 50, eta_s=10 * DAY))  # beyond the horizon
    assert of(out, AvailabilityChanged) == []


def test_availability_changes_when_inbound_enters_the_horizon():
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.inbound("PO-1", K, "A", 50, eta_s=4 * DAY))
    e.wait(2 * DAY)
    out = sim.feed(e.snapshot(TICK, "A", 1))  # any event moves the clock
    assert availability(out).get((K, "web")) == 60


def test_backorders_fill_when_inbound_enters_the_horizon():
    sim = one_node(0, backorder=True)
    e = sim.ev
    sim.feed(e.inbound("PO-1", K, "A", 5, eta_s=4 * DAY))  # beyond the 3-day horizon
    out = sim.feed(e.order("O1", [(K, 3)], paid=True))
    assert statuses(out) == [("O1", "1", "backordered", None, 3)]
    e.wait(DAY)
    out = sim.feed(e.snapshot(TICK, "A", 1))  # another bucket's event: only the clock moves
    assert statuses(out) == [("O1", "1", "allocated", "A", 3)]
    assert availability(out).get((K, "web")) == 2

# == the snapshot guard: a suspicious count waits for approval ============================


def guarded(stock: int = 10, orders: tuple[int, ...] = (6,), **guard) -> Sim:
    """Node A with `stock` units of K (seq 1), paid orders P1, P2... of `orders` units each
    allocated there, and the snapshot guard on (share 0.5, 0 units, unless given)."""
    guard.setdefault("snapshot_guard_share", 0.5)
    sim = Sim(**guard)
    e = sim.ev
    sim.feed(e.node("A"), e.channel("web", hold_ttl_s=60), e.snapshot(K, "A", stock, seq=1))
    for i, qty in enumerate(orders, 1):
        sim.feed(e.order(f"P{i}", [(K, qty)], paid=True))
    return sim


def ledger_of(sim: Sim, sku: str) -> Ledger:
    return sim.engine.ledgers[bucket_of(sku, sim.engine.config.buckets)]


def test_the_guard_is_off_by_default():
    assert EngineConfig().snapshot_guard_share is None
    sim = one_node(10)
    e = sim.ev
    sim.feed(e.order("P1", [(K, 6)], paid=True))
    out = sim.feed(e.snapshot(K, "A", 0))
    assert alerts(out, "snapshot_quarantined") == []
    assert releases(out) == [("P1", "1", "A", 6, "shortage")]
    assert sim.pos(K, "A").on_hand == 0


def test_a_count_far_below_commitments_is_quarantined_with_an_alert():
    sim = guarded(10, (6,))
    e = sim.ev
    out = sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    (alert,) = alerts(out, "snapshot_quarantined")
    assert (alert.sku, alert.node, alert.cause, alert.ts) == (K, "A", "count-1", e.now)
    assert "count-1" in alert.detail and "counts 0" in alert.detail
    assert "ledger 10" in alert.detail and "committed 6" in alert.detail
    # commitments are kept: no shortage, nothing released, the ledger's count stands
    assert alerts(out, "shortage") == [] and releases(out) == [] and statuses(out) == []
    pos = sim.pos(K, "A")
    assert (pos.on_hand, pos.seq, pos.allocated) == (10, 1, 6)
    assert sim.line(K, "P1").status == "allocated"
    committed_within_supply(sim)


def test_nothing_new_is_promised_beyond_what_the_quarantined_count_allows():
    sim = guarded(10, (3, 3))
    e = sim.ev
    out = sim.feed(e.snapshot(K, "A", 4, seq=2))  # 6 below the ledger, 2 below commitments
    assert alerts(out, "snapshot_quarantined")
    assert availability(out) == {(K, "web"): 0} and max_lines(out) == {(K, "web"): 0}
    out = sim.feed(e.order("N1", [(K, 1)], paid=True))  # the ledger alone would give 4
    assert statuses(out) == [("N1", "1", "rejected", None, 1)]
    out = sim.feed(e.cancelled("P2"))  # 3 committed: the count of 4 allows 1 more
    assert availability(out) == {(K, "web"): 1} and max_lines(out) == {(K, "web"): 1}
    assert statuses(sim.feed(e.order("N2", [(K, 2)], paid=True)))[0][2] == "rejected"
    assert allocations(sim.feed(e.order("N3", [(K, 1)], paid=True))) == [("N3", "1", "A", 1)]
    assert sim.pos(K, "A").allocated == 4  # what the count of 4 can back, if it is true


def test_other_services_see_node_atp_net_of_the_quarantined_count():
    sim = guarded(10, (3,))
    e = sim.ev
    out = sim.feed(e.snapshot(K, "A", 2, seq=2))
    (view,) = [v for v in views(ledger_of(sim, K), out) if v.sku == K]
    assert view.nodes == {"A": 0}  # ledger ATP 7, but the count of 2 backs nothing new
    assert view.channels == {"web": 0}


def test_changes_after_a_quarantined_count_move_what_it_allows():
    sim = guarded(10, (6,))
    e = sim.ev
    assert alerts(sim.feed(e.snapshot(K, "A", 4, seq=2)), "snapshot_quarantined")  # 6 kept out
    out = sim.feed(e.adjust(K, "A", +4, "found"))  # on hand 14; if the count is true, 8
    assert availability(out) == {(K, "web"): 2}


def test_an_approved_count_is_applied_with_shortage_resolution():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    out = sim.feed(e.approved("count-1", event_id="ok-1"))
    assert [a.kind for a in alerts(out)] == ["drift", "shortage"]
    assert releases(out) == [("P1", "1", "A", 6, "shortage")]
    assert statuses(out) == [("P1", "1", "rejected", None, 6)]
    assert all(o.cause == "ok-1" for o in out)
    pos = sim.pos(K, "A")
    assert (pos.on_hand, pos.seq, pos.allocated) == (0, 2, 0)
    assert sim.book(K).quarantined is None and ledger_of(sim, K).quarantined == {}
    committed_within_supply(sim)


def test_an_approved_count_counts_what_changed_on_hand_since_it_came():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    sim.feed(e.received("PO-1", K, "A", 5))  # 15 in the ledger; 5 if the count was true
    sim.feed(e.shipped("P1", K, "A", 2))  # 13; 3
    out = sim.feed(e.approved("count-1"))
    assert sim.pos(K, "A").on_hand == 3
    assert releases(out) == [("P1", "1", "A", 4, "shortage")]  # 4 allocated, 3 there
    committed_within_supply(sim)


def test_a_rejected_count_is_dropped_and_the_quarantine_lifted():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 4, seq=2, event_id="count-1"))
    out = sim.feed(e.rejected("count-1"))
    assert alerts(out) == [] and releases(out) == []
    assert availability(out) == {(K, "web"): 4}
    pos = sim.pos(K, "A")
    assert (pos.on_hand, pos.seq, pos.allocated) == (10, 1, 6)
    assert sim.book(K).quarantined is None
    assert allocations(sim.feed(e.order("N1", [(K, 4)], paid=True))) == [("N1", "1", "A", 4)]


def test_a_later_count_supersedes_a_quarantined_one():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    out = sim.feed(e.snapshot(K, "A", 9, seq=3, event_id="count-2"))  # judged on its own
    assert alerts(out, "snapshot_quarantined") == [] and alerts(out, "drift")
    assert availability(out) == {(K, "web"): 3}
    assert (sim.pos(K, "A").on_hand, sim.pos(K, "A").seq) == (9, 3)
    assert sim.book(K).quarantined is None
    assert sim.feed(e.approved("count-1")) == []  # superseded: nothing left to approve
    assert sim.pos(K, "A").on_hand == 9


def test_a_later_suspect_count_replaces_the_quarantined_one():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    out = sim.feed(e.snapshot(K, "A", 2, seq=3, event_id="count-2"))
    (alert,) = alerts(out, "snapshot_quarantined")
    assert "count-2" in alert.detail
    assert sim.feed(e.approved("count-1")) == []
    sim.feed(e.approved("count-2"))
    assert (sim.pos(K, "A").on_hand, sim.pos(K, "A").seq) == (2, 3)


def test_a_count_not_newer_than_a_quarantined_one_is_stale():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 0, seq=5, event_id="count-1"))
    assert sim.feed(e.snapshot(K, "A", 8, seq=4)) == []
    assert sim.feed(e.snapshot(K, "A", 8, seq=5)) == []
    assert sim.book(K).quarantine_at("A").event_id == "count-1"


def test_verdicts_on_unknown_or_settled_counts_do_nothing_but_are_countable():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 9, seq=2, event_id="applied"))  # covers commitments
    sim.feed(e.snapshot(K, "A", 0, seq=3, event_id="count-1"))
    assert sim.feed(e.approved("nobody-knows")) == []
    assert sim.feed(e.rejected("applied")) == []  # applied at once: not quarantined
    sim.feed(e.rejected("count-1"))
    assert sim.feed(e.approved("count-1")) == []  # already settled
    assert sim.feed(e.rejected("count-1")) == []
    assert sim.pos(K, "A").on_hand == 9
    assert sum(l.verdicts_applied for l in sim.engine.ledgers.values()) == 1  # of 5 routed


def test_a_verdict_seen_twice_is_applied_once():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    verdict = e.approved("count-1")
    assert releases(sim.feed(verdict))
    assert sim.feed(verdict) == []


@pytest.mark.parametrize("count, units, held", [
    (6, 0, False),  # covers what is committed
    (5, 0, False),  # drops on hand by 5: not more than half of 10
    (4, 2, False),  # 2 below commitments: not more than 2 units
    (4, 1, True),
])
def test_the_guard_holds_back_only_big_drops_well_below_commitments(count, units, held):
    sim = guarded(10, (6,), snapshot_guard_units=units)
    out = sim.feed(sim.ev.snapshot(K, "A", count, seq=2))
    assert bool(alerts(out, "snapshot_quarantined")) is held
    assert sim.pos(K, "A").on_hand == (10 if held else count)
    committed_within_supply(sim)


def test_a_node_can_turn_the_guard_on_or_off_for_itself():
    sim = Sim()  # the engine's guard is off
    e = sim.ev
    sim.feed(e.node("A", snapshot_guard_share=0.5), e.node("B", at=HANGZHOU),
             e.channel("web", hold_ttl_s=60),
             e.snapshot(K, "A", 10, seq=1), e.snapshot(K, "B", 10, seq=1),
             e.order("PA", [(K, 6)], paid=True), e.order("PB", [(K, 6)], paid=True))
    out = sim.feed(e.snapshot(K, "A", 0, seq=2), e.snapshot(K, "B", 0, seq=2))
    assert [a.node for a in alerts(out, "snapshot_quarantined")] == ["A"]
    assert [r[2] for r in releases(out)] == ["B"]

    sim = guarded(10, (6,))  # on for the engine, off at A: a share of 1 is never exceeded
    sim.feed(sim.ev.node("A", snapshot_guard_share=1.0))
    out = sim.feed(sim.ev.snapshot(K, "A", 0, seq=2))
    assert alerts(out, "snapshot_quarantined") == [] and releases(out)


def test_a_node_can_set_its_own_units():
    sim = guarded(10, (6,))
    sim.feed(sim.ev.node("A", snapshot_guard_units=6))
    out = sim.feed(sim.ev.snapshot(K, "A", 0, seq=2))  # 6 below commitments: not more than 6
    assert alerts(out, "snapshot_quarantined") == [] and releases(out)


def test_verdicts_reach_the_bucket_of_their_snapshot():
    other = next(f"SKU-{i}" for i in range(2, 50) if bucket_of(f"SKU-{i}", 4) != bucket_of(K, 4))
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(other, "A", 10, seq=1), e.order("Q1", [(other, 6)], paid=True))
    sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-k"),
             e.snapshot(other, "A", 0, seq=2, event_id="count-other"))
    out = sim.feed(e.approved("count-other"))
    assert releases(out) == [("Q1", "1", "A", 6, "shortage")]
    assert sim.pos(K, "A").on_hand == 10 and sim.pos(other, "A").on_hand == 0
    out = sim.feed(e.approved("count-k"))
    assert releases(out) == [("P1", "1", "A", 6, "shortage")]


def test_a_quarantine_survives_a_restore():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    config = sim.engine.config
    restored = Engine(config)
    restored.router = pickle.loads(pickle.dumps(sim.engine.router))
    restored.ledgers = {b: Ledger.restore(l.snapshot(), config)
                        for b, l in sim.engine.ledgers.items()}
    assert ledger_of(sim, K).quarantined == {"count-1": (K, "A")}
    sim.engine = restored
    assert ledger_of(sim, K).quarantined == {"count-1": (K, "A")}
    assert statuses(sim.feed(e.order("N1", [(K, 1)], paid=True)))[0][2] == "rejected"
    out = sim.feed(e.approved("count-1"))
    assert releases(out) == [("P1", "1", "A", 6, "shortage")]


def test_a_quarantined_count_orders_no_replenishment_until_it_is_approved():
    sim = guarded(10, (6,))
    e = sim.ev
    sim.feed(e.policy(K, "A", reorder_point=3))
    out = sim.feed(e.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    assert alerts(out, "snapshot_quarantined") and replenishments(out) == []
    out = sim.feed(e.approved("count-1"))
    assert [(r.node, r.qty) for r in replenishments(out)] == [("A", 6)]


def test_a_node_whose_count_is_quarantined_is_no_transfer_source():
    sim = guarded(20, (2,))
    e = sim.ev
    sim.feed(e.node("B", region="Guangdong", at=GUANGZHOU), e.snapshot(K, "B", 0, seq=1))
    sim.feed(e.snapshot(K, "A", 0, seq=2))  # quarantined: 20 on the ledger, 0 if true
    out = sim.feed(e.policy(K, "B", reorder_point=2))
    assert [(r.node, r.from_node) for r in replenishments(out)] == [("B", None)]


def test_a_book_without_quarantine_carries_none():
    sim = guarded(10, (6,))
    assert sim.book(K).quarantined is None
    sim.feed(sim.ev.snapshot(K, "A", 0, seq=2, event_id="count-1"))
    assert sim.book(K).quarantined is not None
    sim.feed(sim.ev.rejected("count-1"))
    assert sim.book(K).quarantined is None  # back to the common case: one None


# == slow movers ==========================================================================

SLOW = re.compile(
    r"(\d+) units ordered in the 30 days to (\S+) against (\d+) in the 30 days before: "
    r"down ([\d.]+)%; on hand: (.*)"
)


def selling(**config) -> Sim:
    """Nodes A and B with plenty of K (5000 and 300), channel `web`; `config`: the engine's."""
    sim = Sim(**config)
    e = sim.ev
    sim.feed(
        e.node("A", region="Shanghai", at=SHANGHAI),
        e.node("B", region="Guangdong", at=GUANGZHOU),
        e.channel("web"),
        e.snapshot(K, "A", 5000),
        e.snapshot(K, "B", 300),
    )
    return sim


def sell(sim: Sim, per_day: dict[int, int]) -> list:
    """A paid order of K on each of those days (days after T0) for that many units."""
    out = []
    for day, units in sorted(per_day.items()):
        out += sim.feed(sim.ev.order(f"S{day}", [(K, units)], paid=True, ts=day * DAY + 3600))
    return out


def touch(sim: Sim, day: float, event_id: str | None = None) -> list:
    """A count of K at B on that day (unchanged: no drift): an event that touches K."""
    return sim.feed(sim.ev.snapshot(K, "B", 300, ts=day * DAY + 7200, event_id=event_id))


def slow_movers(outputs: list) -> list:
    return alerts(outputs, "slow_mover")


def test_a_drop_of_40_percent_is_flagged_once_with_the_figures_and_stock_per_node():
    sim = selling()
    out = sell(sim, {d: 2 for d in range(30)})  # 60 units in days 0-29
    out += sell(sim, {d: 6 for d in range(30, 36)})  # 36 in days 30-59
    out += touch(sim, 60, event_id="count-60")
    (alert,) = slow_movers(out)
    assert (alert.cause, alert.sku, alert.node) == ("count-60", K, None)
    recent, last_day, before, drop, stock = SLOW.fullmatch(alert.detail).groups()
    assert (int(recent), int(before), drop) == (36, 60, "40.0")
    assert last_day == "2027-01-09"  # T0 is 2026-11-11; day 59 is the last whole day
    assert stock == "A 5000, B 300"  # allocations leave on hand until they ship


def test_a_drop_just_short_of_the_threshold_is_not_flagged():
    sim = selling()
    out = sell(sim, {0: 100, 30: 61})
    out += touch(sim, 60)
    assert slow_movers(out) == []
    sim = selling()
    out = sell(sim, {0: 100, 30: 60})
    out += touch(sim, 60)
    assert len(slow_movers(out)) == 1


@pytest.mark.parametrize("before", [3, 19])
def test_below_the_minimum_volume_nothing_is_judged(before):
    sim = selling()
    out = sell(sim, {0: before, 30: 1})  # sold 19 (or 3), then 1
    out += touch(sim, 60) + touch(sim, 61)
    assert slow_movers(out) == []


def test_the_minimum_volume_is_configurable():
    sim = selling(slow_mover_min_units=3)
    out = sell(sim, {0: 3, 30: 1})
    out += touch(sim, 60)
    assert len(slow_movers(out)) == 1


def test_a_sku_that_stays_slow_is_not_flagged_again():
    sim = selling()
    out = sell(sim, {d: 2 for d in range(30)})
    out += touch(sim, 60)
    assert len(slow_movers(out)) == 1
    out = sell(sim, {61: 1, 65: 1, 80: 2})
    for day in (62, 70, 85, 95):
        out += touch(sim, day)
    assert slow_movers(out) == []
    assert sim.book(K).sales.slow


def test_a_sku_that_recovered_and_fell_again_is_flagged_again():
    sim = selling()
    out = sell(sim, {d: 2 for d in range(30)})  # 60, then nothing
    out += touch(sim, 60, event_id="first")
    out += sell(sim, {d: 3 for d in range(60, 90)})  # 90 in days 60-89: above the old 60
    out += touch(sim, 90, event_id="recovered")
    assert not sim.book(K).sales.slow
    out += touch(sim, 120, event_id="second")  # nothing in days 90-119: down 100%
    assert [a.cause for a in slow_movers(out)] == ["first", "second"]
    figures = SLOW.fullmatch(slow_movers(out)[1].detail).groups()
    assert (figures[0], figures[2], figures[3]) == ("0", "90", "100.0")


def test_a_sku_that_stopped_selling_is_flagged_when_a_new_day_begins_without_an_event():
    sim = selling()
    out = sell(sim, {d: 2 for d in range(30)})
    # Another SKU's event moves the clock far on: the new day's sweep judges K (sweep.py).
    out += sim.feed(sim.ev.snapshot(TICK, "A", 1, ts=75 * DAY, event_id="tick"))
    (alert,) = slow_movers(out)
    assert alert.cause == "tick"
    assert SLOW.fullmatch(alert.detail).groups()[:3:2] == ("0", "30")  # days 15-29: 30 units
    assert slow_movers(touch(sim, 75, event_id="next")) == []  # judged once a day, once a fall


def test_rejected_lines_are_not_sales():
    sim = one_node(stock=0)
    sim.feed(sim.ev.order("O1", [(K, 5)], paid=True))
    assert sim.line(K, "O1").status == "rejected"
    assert sim.book(K).sales is None


def test_cancelled_lines_still_count_as_ordered():
    sim = selling()
    sell(sim, {0: 30})
    sim.feed(sim.ev.cancelled("S0", ts=2 * DAY))
    assert sum(sim.book(K).sales.units) == 30


def test_a_sku_that_sold_nothing_for_both_windows_keeps_no_sales():
    sim = selling()
    sell(sim, {0: 1})
    touch(sim, 30)
    assert sim.book(K).sales is not None
    touch(sim, 61)
    assert sim.book(K).sales is None


def test_off_when_the_drop_threshold_is_one_nothing_can_exceed():
    sim = selling(slow_mover_drop=1.01)
    out = sell(sim, {d: 2 for d in range(30)})
    out += touch(sim, 60)
    assert slow_movers(out) == []
    assert sim.book(K).sales is None  # nothing kept while it is off


def test_a_shorter_window_is_configurable():
    sim = selling(slow_mover_window_days=7, slow_mover_min_units=5)
    out = sell(sim, {d: 1 for d in range(7)})
    out += touch(sim, 14)
    (alert,) = slow_movers(out)
    assert alert.detail.startswith("0 units ordered in the 7 days to")


def test_slow_mover_memory_survives_a_restore_and_older_snapshots_restore():
    sim = selling()
    sell(sim, {d: 2 for d in range(30)})
    touch(sim, 60)
    bucket = bucket_of(K, sim.engine.config.buckets)
    ledger = sim.engine.ledgers[bucket]
    restored = Ledger.restore(ledger.snapshot(), sim.engine.config)
    assert restored.books[K].sales == ledger.books[K].sales and restored.books[K].sales.slow
    # A snapshot taken before books kept sales (nor what came after).
    older = older_snapshot(ledger, "sales")
    assert Ledger.restore(older, sim.engine.config).books[K].sales is None


# == causes and command ids ==============================================================


def busy_run() -> tuple[list, list]:
    """A run with holds, payments, an expiry, a shortage, a backorder, cancel, ship, return."""
    sim = two_nodes(6, 3, hold_ttl_s=60, backorder=True, allow_split=True)
    e = sim.ev
    events = [
        e.order("O1", [(K, 2)], ts=100),
        e.order("O2", [(K, 3)], paid=True, ts=101),
        e.order("O3", [(K, 4)], paid=True, ts=102),
        e.paid("O1", ts=103),
        e.order("O4", [(K, 1)], ts=104),
        e.adjust(K, "A", -4, ts=105),
        e.snapshot("SKU-2", "A", 1, ts=300),  # expires O4
        e.shipped("O2", K, "A", 3, ts=301),
        e.cancelled("O1", ts=302),
        e.adjust(K, "B", +10, ts=303),
        e.returned("O2", K, "A", 1, ts=304),
    ]
    outputs = []
    for event in events:
        out = sim.feed(event)
        outputs.append(out)
        committed_within_supply(sim)
    return events, outputs


def test_every_output_names_its_cause_and_the_causes_time():
    events, outputs = busy_run()
    for event, out in zip(events, outputs):
        for o in out:
            assert (o.cause, o.ts) == (event.event_id, event.ts), o
    kinds = Counter(type(o).__name__ for out in outputs for o in out)
    assert {"DispatchAllocate", "DispatchRelease", "OrderStatus", "Alert"} <= set(kinds)


def test_command_ids_are_unique():
    _, outputs = busy_run()
    ids = [o.command_id for out in outputs for o in out if hasattr(o, "command_id")]
    assert len(ids) > 5
    assert len(ids) == len(set(ids))


def test_command_ids_are_the_same_when_the_input_is_processed_again():
    first = [o.command_id for out in busy_run()[1] for o in out if hasattr(o, "command_id")]
    again = [o.command_id for out in busy_run()[1] for o in out if hasattr(o, "command_id")]
    assert first == again


# == the contract's examples =============================================================


def contract_run():
    decode = msgspec.json.Decoder(InputEvent).decode
    events = [decode(line) for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
    sim = Sim()
    by_cause = {ev.event_id: sim.feed(ev) for ev in events}
    return events, by_cause


def test_contract_examples_all_decode():
    decode = msgspec.json.Decoder(InputEvent).decode
    lines = [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
    events = [decode(line) for line in lines]
    assert len(events) == len(lines) == 21
    # every input type of the contract appears (v1.1: clock.tick); stockflow's own verdicts on
    # quarantined snapshots (stock.snapshot.approved / .rejected) are not the contract's
    assert len({type(ev) for ev in events}) == 13


def test_contract_examples_produce_the_documented_decisions():
    _, out = contract_run()
    assert statuses(out["o-1"]) == [("TM-1001", "1", "held", "DC-SH", 2)]
    assert of(out["o-1"], DispatchAllocate) == []
    assert allocations(out["o-2"]) == [("DY-5", "1", "DC-GZ", 1)]
    assert statuses(out["o-2"]) == [("DY-5", "1", "allocated", "DC-GZ", 1)]
    assert allocations(out["o-3"]) == [("TM-1001", "1", "DC-SH", 2)]
    assert statuses(out["o-3"]) == [("TM-1001", "1", "allocated", "DC-SH", 2)]
    assert allocations(out["o-4"]) == [("POS-77", "1", "ST-BJ-01", 1)]
    assert statuses(out["w-1"]) == [("TM-1001", "1", "shipped", "DC-SH", 2)]
    assert releases(out["o-5"]) == [("DY-5", "1", "DC-GZ", 1, "cancelled")]
    assert statuses(out["o-5"]) == [("DY-5", "1", "cancelled", None, 1)]
    assert statuses(out["o-6"]) == [("TM-1001", "1", "returned", "DC-SH", 1)]


def test_contract_examples_keep_the_promise_and_name_their_causes():
    events, out = contract_run()
    ts = {ev.event_id: ev.ts for ev in events}
    for cause, outputs in out.items():
        for o in outputs:
            assert (o.cause, o.ts) == (cause, ts[cause])
    assert all(not alerts(o, "shortage") for o in out.values())
