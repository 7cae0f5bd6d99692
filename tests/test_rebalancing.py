"""Rebalancing: once a day per SKU, stock moves toward a region whose orders outrun its cover.

North (Beijing) sells down jackets faster than its stock covers; South (Guangzhou) sits on
stock nobody there orders. Figures are whole days of event time, judged at the SKU's first
event of a day.
"""

from __future__ import annotations

from stockflow.state.config import EngineConfig

from .scenario import BEIJING, DAY, GUANGZHOU, Sim, replenishments

K = "JACKET"
RULE = dict(rebalance_cover_weeks=2.0, rebalance_surplus_weeks=4.0, rebalance_window_days=7,
            rebalance_min_units=4)
NEAR_BEIJING = (39.0, 117.2)  # Tianjin: no node of its own region, North's the nearest


def world(north: int = 2, south: int = 100, **config) -> Sim:
    sim = Sim(**config)
    e = sim.ev
    sim.feed(
        e.node("DC-N", region="North", at=BEIJING),
        e.node("DC-S", region="South", at=GUANGZHOU),
        e.channel("web", hold_ttl_s=600),
        e.snapshot(K, "DC-N", north),
        e.snapshot(K, "DC-S", south),
    )
    return sim


def in_transit(sim: Sim, node: str, command_id: str) -> int:
    inbound = sim.pos(K, node).inbound
    entry = None if inbound is None else inbound.entries.get(command_id)
    return 0 if entry is None else entry.qty


def sell(sim: Sim, orders: int, qty: int, region: str = "North", at=BEIJING,
         day: int = 6) -> None:
    """Paid orders of `qty` units, all on one day (days after T0), so the days before judge
    nothing and the next one judges them all."""
    e = sim.ev
    for i in range(orders):
        sim.feed(e.order(f"{region}-{day}-{i}", [(K, qty)], paid=True, region=region,
                         ship_to=at, ts=day * DAY + DAY / 2 + i))


def next_day(sim: Sim, day: int) -> list:
    """The SKU's first event on `day`: a count that changes nothing."""
    pos = sim.pos(K, "DC-S")
    return sim.feed(sim.ev.snapshot(K, "DC-S", pos.on_hand, ts=day * DAY + 60))


def test_it_is_off_by_default_and_keeps_no_demand():
    sim = world()
    sell(sim, 7, 2)
    assert replenishments(next_day(sim, 7)) == [] and sim.book(K).demand is None
    assert EngineConfig().rebalance_cover_weeks is None


def test_a_region_short_of_cover_gets_a_transfer_from_the_one_with_surplus():
    sim = world(**RULE)
    sell(sim, 7, 2)  # North: 14 units in 7 days, 14 a week; its 2 units are gone
    out = next_day(sim, 7)
    (req,) = replenishments(out)
    # 2 weeks of 14 = 28 wanted, 0 free in North; South's 88 left are all surplus.
    assert (req.node, req.from_node, req.qty) == ("DC-N", "DC-S", 28)
    assert req.reason == (
        "rebalance: North ordered 14 in 7 days, its stock 0 covers 0.0 weeks (below 2); "
        "South ordered 0, its stock 88 covers any number of weeks (above 4)")
    assert sim.pos(K, "DC-S").transfer_out == 28
    assert in_transit(sim, "DC-N", req.command_id) == 28


def test_it_is_judged_once_a_day_and_counts_what_is_in_transit():
    sim = world(transfer_ttl_s=7 * DAY, **RULE)
    sell(sim, 7, 2)
    assert len(replenishments(next_day(sim, 7))) == 1
    assert replenishments(sim.feed(sim.ev.adjust(K, "DC-S", 1, ts=7 * DAY + 120))) == []
    assert replenishments(next_day(sim, 8)) == []  # the 28 in transit cover 2 weeks


def test_a_suggestion_never_shipped_expires_and_is_made_again():
    sim = world(**RULE)  # transfers live a day unshipped
    sell(sim, 7, 2)
    (first,) = replenishments(next_day(sim, 7))
    out = next_day(sim, 8)
    (again,) = replenishments(out)
    assert [a.transfer for a in out if getattr(a, "kind", "") == "transfer_expired"] == [
        first.command_id]
    assert again.qty == 28 and sim.pos(K, "DC-S").transfer_out == 28


def test_the_giving_region_keeps_its_own_cover_and_its_reorder_point():
    sim = world(south=60, **RULE)
    e = sim.ev
    sim.feed(e.policy(K, "DC-S", reorder_point=10))
    sell(sim, 7, 2)  # South has 60 - 12 = 48 free
    sell(sim, 7, 1, region="South", at=GUANGZHOU)  # 7 a week: South keeps 4 x 7 = 28
    (req,) = replenishments(next_day(sim, 7))
    assert (req.from_node, req.qty) == ("DC-S", 41 - 28)  # 41 free after its own orders
    sim2 = world(south=30, **RULE)
    sim2.feed(sim2.ev.policy(K, "DC-S", reorder_point=10))
    sell(sim2, 7, 2)  # 18 free at South, 8 of them above its reorder point
    (req,) = replenishments(next_day(sim2, 7))
    assert req.qty == 8


def test_a_region_that_ordered_too_little_is_not_judged():
    sim = world(**RULE)
    sell(sim, 3, 1)  # 3 units: below 4
    assert replenishments(next_day(sim, 7)) == []


def test_orders_to_a_region_without_a_node_count_for_the_nearest_nodes_region():
    sim = world(**RULE)
    sell(sim, 7, 2, region="Tianjin", at=NEAR_BEIJING)
    (req,) = replenishments(next_day(sim, 7))
    assert (req.node, req.qty) == ("DC-N", 28) and "North ordered 14" in req.reason


def test_demand_older_than_the_window_is_forgotten():
    sim = world(**RULE)
    sell(sim, 7, 2)
    next_day(sim, 7)
    assert replenishments(next_day(sim, 30)) == []
    assert sim.book(K).demand is None
