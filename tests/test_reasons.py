"""Every `order.status` that is not a plain success says why, from one list (`StatusReason`).

One small story per reason; the last test checks the stories cover the list exactly, and
that the schema `stockflow schema` prints offers the same names.
"""

from __future__ import annotations

import json

from stockflow.ops.cli import main
from stockflow.state.events import CheckoutHold, CheckoutTaken
from stockflow.state.outputs import OrderStatus, StatusReason

from .scenario import GUANGZHOU, Sim, of

SKU = "SKU-1"


def story(*, split=False, backorder=False, ttl=900.0, stock=None, nodes=("A", "B")) -> Sim:
    sim = Sim()
    e = sim.ev
    sim.feed(e.node("A"), e.node("B", region="Guangdong", at=GUANGZHOU),
             e.node("SHOP", kind="store", can_ship=False, can_pickup=False),
             e.channel("web", list(nodes), hold_ttl_s=ttl, allow_split=split,
                       backorder=backorder))
    for node, qty in (stock or {}).items():
        sim.feed(e.snapshot(SKU, node, qty))
    return sim


def said(outputs) -> list[tuple]:
    """(status, node, qty, reason) of every order.status."""
    return [(o.status, o.node, o.qty, o.reason) for o in of(outputs, OrderStatus)]


def test_unknown_channel():
    sim = story(stock={"A": 5})
    assert said(sim.feed(sim.ev.order("O1", [(SKU, 1)], channel="nowhere"))) == [
        ("rejected", None, 1, "unknown_channel")]


def test_no_eligible_node():
    sim = story(stock={"A": 5}, nodes=("A", "SHOP"))
    assert said(sim.feed(sim.ev.order("O1", [(SKU, 1)], pickup_node="SHOP"))) == [
        ("rejected", None, 1, "no_eligible_node")]


def test_no_stock():
    sim = story(split=True, stock={"A": 2, "B": 2})
    assert said(sim.feed(sim.ev.order("O1", [(SKU, 5)], paid=True))) == [
        ("rejected", None, 5, "no_stock")]


def test_split_not_allowed_and_backordered_for_it():
    sim = story(backorder=True, stock={"A": 2, "B": 2})
    assert said(sim.feed(sim.ev.order("O1", [(SKU, 3)], paid=True))) == [
        ("backordered", None, 3, "split_not_allowed")]
    # one node that fills it later: the backorder is filled there
    assert said(sim.feed(sim.ev.snapshot(SKU, "B", 3))) == [
        ("allocated", "B", 3, "backorder_filled")]


def test_a_line_the_pool_could_not_fill_either_is_no_stock_not_split_not_allowed():
    sim = story(stock={"A": 2, "B": 2})
    assert said(sim.feed(sim.ev.order("O1", [(SKU, 5)], paid=True))) == [
        ("rejected", None, 5, "no_stock")]


def test_shortage_and_moved_by_shortage():
    sim = story(stock={"A": 3, "B": 2})
    e = sim.ev
    sim.feed(e.order("O1", [(SKU, 2)], paid=True), e.order("O2", [(SKU, 1)], paid=True))
    # A drops to 0: the newest order moves to B (2 units there), the older one has nowhere
    assert said(sim.feed(e.snapshot(SKU, "A", 0))) == [
        ("allocated", "B", 1, "moved_by_shortage"), ("rejected", None, 2, "shortage")]


def test_held_lines_say_why_they_moved():
    sim = story(backorder=True, stock={"B": 1})
    e = sim.ev
    assert said(sim.feed(e.order("O1", [(SKU, 2)]))) == [("backordered", None, 2, "no_stock")]
    assert said(sim.feed(e.snapshot(SKU, "A", 2))) == [("held", "A", 2, "backorder_filled")]
    sim.feed(e.snapshot(SKU, "B", 5))
    assert said(sim.feed(e.snapshot(SKU, "A", 0))) == [("held", "B", 2, "moved_by_shortage")]


def test_hold_expired_then_revived_by_payment():
    sim = story(ttl=10, stock={"A": 2})
    e = sim.ev
    assert said(sim.feed(e.order("O1", [(SKU, 2)]))) == [("held", "A", 2, None)]
    e.wait(30)
    assert said(sim.feed(e.snapshot("SKU-OTHER", "A", 1))) == [
        ("expired", None, 2, "hold_expired")]
    assert said(sim.feed(e.paid("O1"))) == [("allocated", "A", 2, "revived_by_payment")]


def test_hold_released():
    """A checkout hold taken in, then released through the reservation API: the next intake
    of its SKU names it released."""
    sim = story(stock={"A": 5})
    hold = CheckoutHold(hold_id="h1", channel="web", qty=2, expires_ms=10**13)
    ts = sim.ev.at(1)
    assert said(sim.feed(CheckoutTaken(event_id="i1", ts=ts, sku=SKU, at=1, n=1,
                                       holds=[hold]))) == [("held", "A", 2, None)]
    assert said(sim.feed(CheckoutTaken(event_id="i2", ts=ts, sku=SKU, at=3, n=2, holds=[],
                                       released=["h1"]))) == [
        ("cancelled", None, 2, "hold_released")]


def test_order_cancelled():
    sim = story(stock={"A": 2})
    e = sim.ev
    sim.feed(e.order("O1", [(SKU, 2)]))
    assert said(sim.feed(e.cancelled("O1"))) == [("cancelled", None, 2, "order_cancelled")]


def test_shipped_beyond_allocation_restocked_and_not_restocked():
    sim = story(stock={"A": 5})
    e = sim.ev
    sim.feed(e.order("O1", [(SKU, 1)], paid=True))
    assert said(sim.feed(e.shipped("O1", SKU, "A", 1))) == [("shipped", "A", 1, None)]
    assert said(sim.feed(e.shipped("O1", SKU, "A", 1))) == [
        ("shipped", "A", 1, "shipped_beyond_allocation")]
    assert said(sim.feed(e.returned("O1", SKU, "A", 1))) == [("returned", "A", 1, "restocked")]
    assert said(sim.feed(e.returned("O1", SKU, "A", 1, restock=False))) == [
        ("returned", "A", 1, "not_restocked")]


def test_plain_successes_carry_no_reason():
    sim = story(stock={"A": 5})
    e = sim.ev
    assert said(sim.feed(e.order("O1", [(SKU, 1)]))) == [("held", "A", 1, None)]
    assert said(sim.feed(e.paid("O1"))) == [("allocated", "A", 1, None)]


def test_promise_moved_when_on_hand_no_longer_gives_it_now():
    sim = story(stock={"A": 5}, nodes=("A",))
    e = sim.ev
    sim.feed(e.inbound("PO-1", SKU, "A", 5, eta_s=3600))
    assert said(sim.feed(e.order("O1", [(SKU, 4)], paid=True))) == [("allocated", "A", 4, None)]
    assert said(sim.feed(e.adjust(SKU, "A", -2))) == [("allocated", "A", 4, "promise_moved")]


def test_the_list_of_reasons_is_what_the_stories_give_and_what_the_schema_says(capsys):
    told = {
        "unknown_channel", "no_eligible_node", "no_stock", "split_not_allowed", "shortage",
        "backorder_filled", "moved_by_shortage", "revived_by_payment", "promise_moved",
        "hold_expired", "hold_released", "order_cancelled", "shipped_beyond_allocation",
        "restocked", "not_restocked",
    }
    assert set(StatusReason.__args__) == told
    assert main(["schema", "outputs"]) == 0
    schema = json.loads(capsys.readouterr().out)
    reason = schema["$defs"]["OrderStatus"]["properties"]["reason"]
    enums = [set(x["enum"]) for x in reason["anyOf"] if "enum" in x]
    assert enums == [told]
