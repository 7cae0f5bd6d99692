"""Transfers: reserved at the source, in transit at the destination, until the WMS settles them.

Each transition on its own (request, shipment, receipt, cancellation, expiry, a shortage at
the source), then random interleavings of orders, counts and the WMS's transfer events with
the outside auditor after every event, and a crash with a restore in the middle.
"""

from __future__ import annotations

import pickle

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockflow.state.book import SkuBook
from stockflow.state.engine import Engine
from stockflow.state.events import StockSnapshot, epoch_ms
from stockflow.state.ledger import Ledger
from stockflow.state.outputs import Alert, ReplenishmentRequested
from stockflow.state.position import Position

from .invariants import PromiseBroken, audit, audit_end_state
from .scenario import (
    DAY,
    GUANGZHOU,
    SHANGHAI,
    Sim,
    alerts,
    availability,
    releases,
    replenishments,
    statuses,
)
from .test_promise import (
    PROPERTY,
    T0,
    _audited,
    _tick,
    check_books,
    crash_and_restore_resumes_exactly,
    run,
)
from .transfer_scenarios import transfer_histories

K = "SKU-1"


def world(qty_at_b: int = 50, **config) -> Sim:
    """A (Shanghai) with 1 unit, B (Guangzhou) with `qty_at_b`; channels `web` (both nodes,
    lines split) and `south` (B only)."""
    sim = Sim(**config)
    e = sim.ev
    sim.feed(
        e.node("A", region="Shanghai", at=SHANGHAI),
        e.node("B", region="Guangdong", at=GUANGZHOU),
        e.channel("web", allow_split=True),
        e.channel("south", ["B"]),
        e.snapshot(K, "A", 1),
        e.snapshot(K, "B", qty_at_b),
    )
    return sim


def asked(qty_at_b: int = 50, **config) -> tuple[Sim, ReplenishmentRequested]:
    """A falls under a reorder point of 5 and asks B for 9: a transfer."""
    sim = world(qty_at_b, **config)
    (req,) = replenishments(sim.feed(sim.ev.policy(K, "A", reorder_point=5)))
    assert (req.node, req.from_node, req.qty) == ("A", "B", 9)
    return sim, req


def in_transit(sim: Sim, node: str, command_id: str):
    inbound = sim.pos(K, node).inbound
    return None if inbound is None else inbound.entries.get(command_id)


def no_transfers_left(sim: Sim) -> bool:
    book = sim.book(K)
    return book.transfers is None and all(p.transfer_out == 0 for p in book.positions.values())


# == request ==============================================================================


def test_a_transfer_reserves_its_units_at_the_source_and_counts_them_in_transit():
    sim = world(transfer_lead_s=DAY)
    out = sim.feed(sim.ev.policy(K, "A", reorder_point=5))
    (req,) = replenishments(out)
    b = sim.pos(K, "B")
    assert (b.on_hand, b.transfer_out, b.committed) == (50, 9, 9)
    entry = in_transit(sim, "A", req.command_id)
    assert (entry.qty, entry.kind) == (9, "in_transit")
    assert entry.eta_ms == epoch_ms(req.ts) + int(DAY * 1000)  # the clock + the lead time
    # Due within the horizon: sellable at A. The pool is the same; B alone sells 9 fewer.
    assert sim.pos(K, "A").atp(epoch_ms(req.ts) + 3 * 86_400_000) == 10
    assert availability(out) == {(K, "south"): 41}


def test_the_source_cannot_sell_the_units_it_reserved():
    sim, _ = asked()
    out = sim.feed(sim.ev.order("O1", [(K, 42)], channel="south", paid=True))  # B has 41 free
    assert statuses(out) == [("O1", "1", "rejected", None, 42)]
    out = sim.feed(sim.ev.order("O2", [(K, 41)], channel="south", paid=True))
    assert statuses(out) == [("O2", "1", "allocated", "B", 41)]


def test_the_destination_sells_what_is_in_transit_within_the_horizon():
    sim, _ = asked()
    out = sim.feed(sim.ev.order("O1", [(K, 10)], ship_to=SHANGHAI, paid=True))
    assert statuses(out) == [("O1", "1", "allocated", "A", 10)]  # 1 on hand + 9 coming


def test_in_transit_beyond_the_horizon_is_not_sellable_yet():
    sim, req = asked(transfer_lead_s=5 * DAY)  # the horizon is 3 days
    a = sim.pos(K, "A")
    assert a.inbound_qty == 9 and a.atp(epoch_ms(req.ts) + 3 * 86_400_000) == 1
    assert a.replenishing  # the request stays open: nothing sellable came yet


def test_a_purchase_reserves_nothing():
    sim = world(qty_at_b=8)  # B's surplus (8) does not cover 9
    (req,) = replenishments(sim.feed(sim.ev.policy(K, "A", reorder_point=5)))
    assert req.from_node is None and no_transfers_left(sim)


# == shipped, received ====================================================================


def test_shipped_takes_the_units_from_on_hand_at_the_source_and_keeps_them_in_transit():
    sim, req = asked()
    out = sim.feed(sim.ev.transfer_shipped(req.command_id, K, "B", "A", 7))  # 2 short
    b = sim.pos(K, "B")
    assert (b.on_hand, b.transfer_out) == (43, 0)
    assert in_transit(sim, "A", req.command_id).qty == 7
    assert not alerts(out, "drift")


def test_received_under_the_command_id_moves_it_from_in_transit_to_on_hand():
    sim, req = asked()
    e = sim.ev
    sim.feed(e.transfer_shipped(req.command_id, K, "B", "A", 9))
    sim.feed(e.received(req.command_id, K, "A", 4))
    assert sim.pos(K, "A").on_hand == 5 and in_transit(sim, "A", req.command_id).qty == 5
    sim.feed(e.received(req.command_id, K, "A", 5))
    assert sim.pos(K, "A").on_hand == 10 and in_transit(sim, "A", req.command_id) is None
    assert no_transfers_left(sim)


def test_a_receipt_before_the_shipment_keeps_the_reserve_until_it_ships():
    sim, req = asked()
    e = sim.ev
    sim.feed(e.received(req.command_id, K, "A", 9))
    assert sim.pos(K, "A").on_hand == 10 and in_transit(sim, "A", req.command_id) is None
    assert sim.pos(K, "B").transfer_out == 9
    sim.feed(e.transfer_shipped(req.command_id, K, "B", "A", 9))
    assert (sim.pos(K, "B").on_hand, sim.pos(K, "B").transfer_out) == (41, 0)
    assert no_transfers_left(sim) and sim.pos(K, "A").inbound_qty == 0


def test_a_transfer_ships_once():
    sim, req = asked()
    e = sim.ev
    sim.feed(e.transfer_shipped(req.command_id, K, "B", "A", 9))
    sim.feed(e.transfer_shipped(req.command_id, K, "B", "A", 9))  # resent under a new id
    assert sim.pos(K, "B").on_hand == 41 and in_transit(sim, "A", req.command_id).qty == 9


def test_a_shipment_the_engine_never_asked_for_is_counted_in_transit_too():
    sim, _ = asked()
    e = sim.ev
    out = sim.feed(e.transfer_shipped("WMS-77", K, "B", "A", 3))
    assert sim.pos(K, "B").on_hand == 47 and in_transit(sim, "A", "WMS-77").qty == 3
    assert not alerts(out)
    sim.feed(e.received("WMS-77", K, "A", 3))
    assert in_transit(sim, "A", "WMS-77") is None and sim.pos(K, "A").on_hand == 4


def test_shipping_more_than_on_hand_leaves_a_debt_said_as_drift():
    sim, req = asked(qty_at_b=12)
    out = sim.feed(sim.ev.transfer_shipped(req.command_id, K, "B", "A", 15))
    assert sim.pos(K, "B").on_hand == -3 and alerts(out, "drift")


# == cancelled, expired ===================================================================


def test_cancelled_releases_the_reserve_and_drops_the_units_in_transit():
    sim, req = asked(buckets=8)
    out = sim.feed(sim.ev.transfer_cancelled(req.command_id))
    assert no_transfers_left(sim) and sim.pos(K, "A").inbound_qty == 0
    assert not alerts(out, "transfer_expired")
    assert sim.feed(sim.ev.transfer_cancelled(req.command_id)) == []  # nothing left to cancel


def test_a_cancellation_finds_its_transfer_in_the_batch_that_asked_for_it():
    sim = Sim(buckets=8)
    e = sim.ev
    sim.feed(e.node("A"), e.node("B", at=GUANGZHOU), e.channel("web"),
             e.snapshot(K, "A", 1), e.snapshot(K, "B", 50))
    sim.feed(e.policy(K, "A", reorder_point=5, event_id="p"),
             e.transfer_cancelled("p/replenish/SKU-1/A"))
    assert no_transfers_left(sim)


def test_a_cancelled_transfer_takes_back_what_the_destination_sold_of_it():
    sim, req = asked()
    e = sim.ev
    sim.feed(e.order("O1", [(K, 10)], channel="web", paid=True))  # 1 on hand + 9 coming
    out = sim.feed(e.transfer_cancelled(req.command_id))
    assert alerts(out, "shortage")[0].node == "A"
    # Split from B instead: A's 1 unit stays, 9 move to B (which has its 50 back).
    assert releases(out) == [("O1", "1", "A", 9, "shortage")]
    assert sim.pos(K, "B").allocated == 9


def test_a_transfer_not_shipped_in_time_expires_at_the_skus_next_event():
    sim, req = asked(transfer_ttl_s=3600)
    e = sim.ev
    assert not alerts(sim.feed(e.adjust(K, "B", 1, ts=3000)), "transfer_expired")
    out = sim.feed(e.adjust(K, "B", 1, ts=4000))
    (expired,) = alerts(out, "transfer_expired")
    assert (expired.transfer, expired.node, expired.cause) == (req.command_id, "A", out[0].cause)
    assert sim.book(K).transfer(req.command_id) is None
    assert in_transit(sim, "A", req.command_id) is None
    # A is below its reorder point again: a new request, from B again, reserved afresh.
    (again,) = replenishments(out)
    assert (again.node, again.from_node, again.qty) == ("A", "B", 9)
    assert sim.pos(K, "B").transfer_out == 9 and list(sim.book(K).transfers) == [
        again.command_id]


def test_a_shipped_transfer_does_not_expire():
    sim, req = asked(transfer_ttl_s=3600)
    e = sim.ev
    sim.feed(e.transfer_shipped(req.command_id, K, "B", "A", 9))
    assert not alerts(sim.feed(e.adjust(K, "B", 1, ts=10 * DAY)), "transfer_expired")
    assert in_transit(sim, "A", req.command_id).qty == 9


# == a shortage at the source =============================================================


def test_a_shortage_at_the_source_takes_the_transfer_back_before_any_order():
    sim, req = asked(qty_at_b=20)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 8)], channel="south"))  # held at B: 8 + 9 reserved of 20
    out = sim.feed(e.snapshot(K, "B", 10))
    (taken,) = alerts(out, "transfer_taken_back")
    assert (taken.transfer, taken.node) == (req.command_id, "B")
    assert sim.line(K, "O1").parts == {"B": 8}  # the hold stays
    assert sim.book(K).transfer(req.command_id) is None
    assert in_transit(sim, "A", req.command_id) is None


def test_a_transfer_taken_back_leaves_its_destination_within_supply():
    sim, req = asked(qty_at_b=20)
    e = sim.ev
    sim.feed(e.order("O1", [(K, 10)], paid=True))  # at A: 1 on hand + 9 in transit
    out = sim.feed(e.snapshot(K, "B", 0))
    assert alerts(out, "transfer_taken_back") and {a.node for a in alerts(out, "shortage")} == {
        "A", "B"}
    assert statuses(out)[-1][2] == "rejected"  # nowhere else to fill it
    for node, pos in sim.book(K).positions.items():
        assert pos.committed <= max(0, pos.supply), node


# == state ================================================================================


def restored(sim: Sim) -> None:
    config = sim.engine.config
    engine = Engine(config)
    engine.router = pickle.loads(pickle.dumps(sim.engine.router))
    engine.ledgers = {b: Ledger.restore(l.snapshot(), config)
                      for b, l in sim.engine.ledgers.items()}
    sim.engine = engine


def test_transfers_survive_a_restore():
    sim, req = asked(buckets=8)
    restored(sim)
    assert sim.pos(K, "B").transfer_out == 9 and in_transit(sim, "A", req.command_id).qty == 9
    sim.feed(sim.ev.transfer_cancelled(req.command_id))  # the restored bucket still finds it
    assert no_transfers_left(sim)


def test_a_snapshot_from_before_transfers_restores_with_none():
    sim, _ = asked()
    ledger = next(l for l in sim.engine.ledgers.values() if K in l.books)
    catalog, books = msgspec.msgpack.decode(ledger.snapshot())
    # Books and positions as written before transfers were kept (and every field after them).
    book_fields, pos_fields = SkuBook.__struct_fields__, Position.__struct_fields__
    b_cut = len(book_fields) - book_fields.index("transfers")
    p_cut = len(pos_fields) - pos_fields.index("transfer_out")
    older = {k: [{n: p[:-p_cut] for n, p in b[0].items()}, *b[1:-b_cut]]
             for k, b in books.items()}
    book = Ledger.restore(msgspec.msgpack.encode([catalog, older]), sim.engine.config).books[K]
    assert book.transfers is None and book.positions["B"].transfer_out == 0


# == random interleavings =================================================================


@PROPERTY
@given(transfer_histories())
def test_nothing_is_oversold_with_transfers_in_flight(history):
    config, events = history
    engine = Engine(config)
    outputs = []
    for ev in events:
        outputs.extend(engine.process([ev]))
        check_books(engine)
        check_reserves(engine)
    auditor = audit(events, outputs)
    assert auditor.transfers_requested == sum(
        1 for o in outputs if type(o) is ReplenishmentRequested and o.from_node is not None)


@PROPERTY
@given(transfer_histories(), st.data())
def test_a_restore_in_the_middle_of_transfers_changes_nothing(history, data):
    config, events = history
    crash_and_restore_resumes_exactly(events, data.draw(st.integers(0, len(events))), config)


@PROPERTY
@given(transfer_histories(), st.integers(1, 6))
def test_transfers_do_not_depend_on_the_bucket_count(history, buckets):
    config, events = history
    one = run(events, config=msgspec.structs.replace(config, buckets=1))
    many = run(events, config=msgspec.structs.replace(config, buckets=buckets))
    assert sorted(map(msgspec.json.encode, one)) == sorted(map(msgspec.json.encode, many))


def check_reserves(engine: Engine) -> None:
    """Each node's reserve is its unshipped transfers out; each one is in transit there."""
    for sku, book in engine.books():
        reserved: dict[str, int] = {}
        for command_id, t in (book.transfers or {}).items():
            if not t.shipped:
                reserved[t.from_node] = reserved.get(t.from_node, 0) + t.qty
            entry = book.positions[t.to_node].inbound
            left = max(0, t.qty - t.received)
            assert (entry.entries[command_id].qty if left else 0) == left, (sku, command_id)
        for node, pos in book.positions.items():
            assert pos.transfer_out == reserved.get(node, 0), (sku, node)


# == the auditor's side ===================================================================


def _transfer(cause: str, qty: int, from_node: str = "N-SOUTH") -> ReplenishmentRequested:
    return ReplenishmentRequested(ts=T0, cause=cause, command_id=f"{cause}/t", sku="K1",
                                  node="N-EAST", qty=qty, reason="test", from_node=from_node)


def test_auditor_counts_a_transfers_reserve_as_committed_at_its_source():
    # N-SOUTH has 5 units: a transfer of 5 fits, one of 6 is an oversell.
    auditor = _audited((_tick("e1"), [_transfer("e1", 5)]))
    assert auditor.committed_at[("K1", "N-SOUTH")] == 5
    assert auditor.inbound[("K1", "N-EAST")] == {"e1/t": 5}
    with pytest.raises(PromiseBroken, match="N-SOUTH committed 6 > supply 5"):
        _audited((_tick("e1"), [_transfer("e1", 6)]))


def test_auditor_refuses_an_expiry_of_a_transfer_that_is_not_open():
    expired = Alert(ts=T0, cause="e2", kind="transfer_expired", sku="K1", node="N-EAST",
                    detail="late", transfer="e1/t")
    auditor = _audited((_tick("e1"), [_transfer("e1", 5)]), (_tick("e2"), [expired]))
    assert auditor.committed_at[("K1", "N-SOUTH")] == 0 and not auditor.inbound[("K1", "N-EAST")]
    with pytest.raises(AssertionError, match="not open and unshipped"):
        _audited((_tick("e2"), [expired]))


def test_the_end_state_audit_takes_a_transfers_ending_read_before_its_request():
    """Output topics are read in no order across topics: the alert that ends a transfer may
    come before the request it ends. An ending without any request is still refused."""
    stock = [StockSnapshot(event_id=f"s{n}", ts=T0, sku="K1", node=n, on_hand=5, seq=1)
             for n in ("N-EAST", "N-SOUTH")]
    taken_back = Alert(ts=T0, cause="e2", kind="transfer_taken_back", sku="K1",
                       node="N-SOUTH", detail="short", transfer="e1/t")
    auditor = audit_end_state([*stock, _tick("e1"), _tick("e2")],
                              [taken_back, _transfer("e1", 5)])
    assert auditor.committed_at[("K1", "N-SOUTH")] == 0 and not auditor.inbound[("K1", "N-EAST")]
    with pytest.raises(AssertionError, match="not open and unshipped"):
        audit_end_state([*stock, _tick("e2")], [taken_back])
