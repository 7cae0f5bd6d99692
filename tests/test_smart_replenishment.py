"""Smart replenishment: the points learnt from a node's daily demand, against a hand-worked
case, and the demand history kept across a restore."""

from __future__ import annotations

import math
from datetime import timedelta

import msgspec
import pytest

from stockflow.ops.sku_view import report_json, report_table
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.node_position import sku_report
from stockflow.state.outputs import ReplenishmentRequested

from .scenario import Script
from .test_promise import T0, crash_and_restore_resumes_exactly

SMART = EngineConfig(buckets=2, replenishment="smart", replenishment_lead_s=2 * 86400,
                     review_period_s=86400, service_level=0.95, demand_window_days=4,
                     demand_min_days=4)


def history() -> list:
    """K at SH: 100 units, a fixed reorder point of 1 (up to 2). Paid orders of 2, 4, 0 and 2
    units on four days, then 85 units written off on the fourth."""
    e = Script()
    hour, day = timedelta(hours=1), timedelta(days=1)
    return [
        e.node("SH", ts=T0), e.channel("web", ts=T0),
        e.policy("K", "SH", safety_stock=0, reorder_point=1, order_up_to=2, ts=T0),
        e.snapshot("K", "SH", 100, ts=T0),
        e.order("O1", [("K", 2)], paid=True, ts=T0 + hour),
        e.order("O2", [("K", 4)], paid=True, ts=T0 + day + hour),
        e.order("O3", [("K", 2)], paid=True, ts=T0 + 3 * day + hour),
        e.adjust("K", "SH", -85, ts=T0 + 3 * day + 2 * hour),
    ]


def requests(config: EngineConfig) -> list[ReplenishmentRequested]:
    engine = Engine(config)
    out = [o for ev in history() for o in engine.process([ev])]
    return [o for o in out if type(o) is ReplenishmentRequested]


def test_the_learnt_points_match_the_hand_worked_case():
    # days [2, 4, 0, 2]: mu 2, sigma sqrt(2); z(0.95) 1.6449; lead 2 d, review 1 d:
    # safety 1.6449 x 1.4142 x sqrt(3) = 4.03; reorder point ceil(2 x 2 + 4.03) = 9;
    # order-up-to ceil(2 x 3 + 4.03) = 11. ATP after the write-off: 100 - 8 - 85 = 7 < 9,
    # so 11 - 7 = 4 units are asked for.
    [request] = requests(SMART)
    assert (request.qty, request.from_node) == (4, None)
    assert request.reason == (
        "atp 7 below reorder point 9, up to 11 (learnt: 2.00 units/day (sd 1.41) over 4 days, "
        "lead 2, review 1 (days), service level 0.95, safety stock 4.0)")


def test_the_period_may_be_shorter_than_a_day():
    # the same demand in 12-hour periods: [2, 0, 4, 0, 0, 0, 2] over 7 periods (the last
    # ones up to the write-off); mu 8/7, lead 4 and review 2 periods
    hourly = msgspec.structs.replace(SMART, demand_period_s=43200, demand_window_days=7)
    [request] = requests(hourly)
    mu = 8 / 7
    sigma = (sum((d - mu) ** 2 for d in (2, 0, 4, 0, 0, 0, 2)) / 7) ** 0.5
    safety = 1.6448536269514722 * sigma * 6 ** 0.5
    reorder_point, up_to = math.ceil(mu * 4 + safety), math.ceil(mu * 6 + safety)
    assert (reorder_point, up_to) == (11, 13)  # by hand: ceil(10.44), ceil(12.73)
    assert request.qty == up_to - 7
    assert request.reason.startswith(
        f"atp 7 below reorder point {reorder_point}, up to {up_to} (learnt: 1.14 units/12 h "
        "(sd 1.46) over 7 periods of 12 h, lead 4, review 2 (periods of 12 h)")


def test_fixed_points_ask_for_nothing_here():
    assert requests(msgspec.structs.replace(SMART, replenishment="fixed")) == []


def test_too_few_days_keep_the_policys_own_points():
    assert requests(msgspec.structs.replace(SMART, demand_min_days=5)) == []


@pytest.mark.parametrize("cut", [4, 5, 6, 7])
def test_the_demand_history_survives_a_restore(cut):
    crash_and_restore_resumes_exactly(history(), cut, SMART)


def test_a_restore_that_lost_the_history_would_ask_otherwise():
    # the history is what the restore keeps: without it the request above is not made
    engine = Engine(SMART)
    events = history()
    for ev in events[:7]:
        engine.process([ev])
    for _, book in engine.books():
        book.positions["SH"].demand_days = None
    out = engine.process([events[7]])
    assert [o for o in out if type(o) is ReplenishmentRequested] == []


def test_a_node_that_sells_nothing_learns_it_needs_nothing():
    # named for replenishment on day 0, no line for 8 days: mu 0, sigma 0, both points 0
    # (order-up-to 1); its stock written off on day 8 asks for nothing, where the fixed
    # reorder point of 1 asks for 2
    e = Script()
    events = [e.node("SH", ts=T0), e.channel("web", ts=T0),
              e.policy("K", "SH", safety_stock=0, reorder_point=1, order_up_to=2, ts=T0),
              e.snapshot("K", "SH", 5, ts=T0),
              e.adjust("K", "SH", -5, ts=T0 + timedelta(days=8))]
    smart, fixed = Engine(SMART), Engine(msgspec.structs.replace(SMART, replenishment="fixed"))
    asked = {name: [o for ev in events for o in engine.process([ev])
                    if type(o) is ReplenishmentRequested]
             for name, engine in (("smart", smart), ("fixed", fixed))}
    assert asked["smart"] == [] and [r.qty for r in asked["fixed"]] == [2]


LEARNT = msgspec.structs.replace(SMART, replenishment_lead_s=None)


def with_a_purchase(received: bool) -> list:
    """The history above with a purchase of 1 unit announced at 00:30 on day 0 and, if
    `received`, received at 00:30 on day 2: a lead time of 2 days."""
    e = Script()
    events = history()
    half = timedelta(minutes=30)
    inbound = e.inbound("PO-1", "K", "SH", 1, eta_s=2 * 86400, kind="purchase_order",
                        ts=T0 + half, event_id="po-announced")
    extra = [inbound]
    if received:
        extra.append(e.received("PO-1", "K", "SH", 1, ts=T0 + timedelta(days=2) + half,
                                event_id="po-received"))
    return events[:4] + extra[:1] + events[4:6] + extra[1:] + events[6:]


def requests_of(events: list, config: EngineConfig) -> list[ReplenishmentRequested]:
    engine = Engine(config)
    return [o for ev in events for o in engine.process([ev])
            if type(o) is ReplenishmentRequested]


def test_the_lead_time_is_learnt_from_a_purchase_announced_then_received():
    # the hand-worked case with the learnt lead of 2 days: points 9 and 11; ATP after the
    # write-off 101 - 8 - 85 = 8, so 3 units are asked for
    [request] = requests_of(with_a_purchase(received=True), LEARNT)
    assert request.qty == 3
    assert "atp 8 below reorder point 9, up to 11" in request.reason
    assert "lead 2 learnt, review 1 (days)" in request.reason


def test_until_a_purchase_is_received_the_policys_points_stand():
    assert requests_of(with_a_purchase(received=False), LEARNT) == []


@pytest.mark.parametrize("cut", [5, 6, 7, 8])
def test_the_purchases_and_the_learnt_lead_survive_a_restore(cut):
    crash_and_restore_resumes_exactly(with_a_purchase(received=True), cut, LEARNT)


def test_inspect_shows_the_points_and_where_they_came_from():
    for config, expected in ((SMART, (9, 11)), (msgspec.structs.replace(SMART,
                                                                       replenishment="fixed"),
                                                (1, 2))):
        engine = Engine(config)
        for ev in history():
            engine.process([ev])
        ledger = next(l for l in engine.ledgers.values() if "K" in l.books)
        report = sku_report("K", ledger.books["K"], ledger.catalog.channels, ledger.horizon_ms,
                            ledger.smart, ledger.clock_ms)
        pos = report.positions["SH"]
        assert (pos.reorder_point, pos.order_up_to) == expected
        table = report_table(report)
        if config.replenishment == "smart":
            assert pos.points_from.startswith("learnt: 2.00 units/day (sd 1.41) over 4 days")
            assert "SH                            9           11  learnt: 2.00" in table
        else:
            assert pos.points_from == "policy"
            assert report_json(report)["positions"][0]["points_from"] == "policy"
