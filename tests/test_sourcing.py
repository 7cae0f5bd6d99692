"""Sourcing: which nodes may fill a line, how they are ranked, when a line is split, and ATP.

Each test builds a tiny world, sends one order and looks at where its units went (the
`held` statuses of an unpaid order, or the `dispatch.allocate` commands of a paid one).
"""

from __future__ import annotations

from stockflow.state.outputs import DispatchAllocate

from .scenario import (
    BEIJING,
    CHENGDU,
    DAY,
    GUANGZHOU,
    HANGZHOU,
    SHANGHAI,
    SHENZHEN,
    Sim,
    allocations,
    of,
    statuses,
)

SKU = "SKU-1"


def world(sim: Sim, *nodes, split: bool = False, backorder: bool = False, channel_nodes=None,
          stock: dict[str, int] | None = None) -> Sim:
    """Nodes as given (made with `sim.ev`), channel `web` over them, and stock per node."""
    e = sim.ev
    sim.feed(*nodes, e.channel("web", channel_nodes, allow_split=split, backorder=backorder))
    for node, qty in (stock or {}).items():
        sim.feed(e.snapshot(SKU, node, qty))
    return sim


def place(sim: Sim, qty: int, **order) -> list[tuple]:
    """A paid order for `qty` of SKU; returns its allocations (order, line, node, qty)."""
    order.setdefault("paid", True)
    return allocations(sim.feed(sim.ev.order("O1", [(SKU, qty)], **order)))


def rejection(sim: Sim, qty: int, **order) -> tuple[str, str | None]:
    """A paid order that should not be placed: (status, reason) of its line."""
    order.setdefault("paid", True)
    out = sim.feed(sim.ev.order("O1", [(SKU, qty)], **order))
    assert not of(out, DispatchAllocate)
    (st,) = [o for o in out if getattr(o, "status", None)]
    return st.status, st.reason


# -- eligible nodes ----------------------------------------------------------------------


def test_only_the_channels_nodes_are_eligible():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("NEAR", region="Shanghai", at=SHANGHAI),
        e.node("FAR", region="Guangdong", at=GUANGZHOU),
        channel_nodes=["FAR"], stock={"NEAR": 10, "FAR": 10},
    )
    assert place(sim, 2, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "FAR", 2)]


def test_star_channel_uses_every_node():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("FAR", region="Guangdong", at=GUANGZHOU),
        e.node("NEAR", region="Shanghai", at=SHANGHAI),
        channel_nodes=["*"], stock={"NEAR": 10, "FAR": 10},
    )
    assert place(sim, 2, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "NEAR", 2)]


def test_inactive_node_is_not_eligible():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("NEAR", region="Shanghai", at=SHANGHAI, active=False),
        e.node("FAR", region="Guangdong", at=GUANGZHOU),
        stock={"NEAR": 10, "FAR": 10},
    )
    assert place(sim, 2, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "FAR", 2)]


def test_node_deactivated_later_stops_being_eligible():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("NEAR", region="Shanghai", at=SHANGHAI),
        e.node("FAR", region="Guangdong", at=GUANGZHOU),
        stock={"NEAR": 10, "FAR": 10},
    )
    sim.feed(sim.ev.node("NEAR", region="Shanghai", at=SHANGHAI, active=False))
    assert place(sim, 2, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "FAR", 2)]


def test_ship_line_skips_a_node_that_cannot_ship():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("STORE", kind="store", region="Shanghai", at=SHANGHAI, can_ship=False,
               can_pickup=True),
        e.node("DC", region="Guangdong", at=GUANGZHOU),
        stock={"STORE": 10, "DC": 10},
    )
    assert place(sim, 2, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "DC", 2)]


def test_ship_line_with_only_non_shipping_nodes_is_rejected_no_eligible_node():
    sim = Sim()
    e = sim.ev
    world(sim, e.node("STORE", kind="store", can_ship=False, can_pickup=True),
                stock={"STORE": 10})
    assert rejection(sim, 1) == ("rejected", "no_eligible_node")


def test_pickup_goes_only_to_the_pickup_node():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("DC", region="Beijing", at=BEIJING, can_pickup=True),  # nearer, more stock
        e.node("ST-1", kind="store", region="Beijing", at=(40.5, 117.0), can_pickup=True),
        stock={"DC": 100, "ST-1": 3},
    )
    assert place(sim, 2, region="Beijing", ship_to=BEIJING, pickup_node="ST-1") == [
        ("O1", "1", "ST-1", 2)
    ]


def test_pickup_node_without_pickup_capability_is_rejected_no_eligible_node():
    sim = Sim()
    e = sim.ev
    world(sim, e.node("DC", can_pickup=False), stock={"DC": 10})
    assert rejection(sim, 1, pickup_node="DC") == ("rejected", "no_eligible_node")


def test_pickup_node_outside_the_channel_is_rejected_no_eligible_node():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("ST-1", kind="store", can_pickup=True),
        e.node("ST-2", kind="store", can_pickup=True),
        channel_nodes=["ST-1"], stock={"ST-1": 10, "ST-2": 10},
    )
    assert rejection(sim, 1, pickup_node="ST-2") == ("rejected", "no_eligible_node")


def test_pickup_node_without_stock_is_rejected_no_stock():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("ST-1", kind="store", can_pickup=True),
        e.node("DC", can_pickup=True),
        stock={"ST-1": 1, "DC": 50},
    )
    assert rejection(sim, 2, pickup_node="ST-1") == ("rejected", "no_stock")


# -- ranking -----------------------------------------------------------------------------


def test_a_node_that_fills_the_whole_line_beats_a_nearer_same_region_one():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("LOCAL", region="Shanghai", at=SHANGHAI),
        e.node("REMOTE", region="Guangdong", at=GUANGZHOU),
        split=True, stock={"LOCAL": 2, "REMOTE": 5},
    )
    assert place(sim, 3, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "REMOTE", 3)]


def test_same_region_beats_shorter_distance():
    # Shenzhen is Guangdong; the Guangdong node sits in Guangzhou, a node of another region
    # (a bonded warehouse across the border, say) is right next to the customer.
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("OUT-OF-REGION", region="HongKong", at=(22.55, 114.07)),
        e.node("IN-REGION", region="Guangdong", at=GUANGZHOU),
        stock={"OUT-OF-REGION": 10, "IN-REGION": 10},
    )
    assert place(sim, 1, region="Guangdong", ship_to=SHENZHEN) == [("O1", "1", "IN-REGION", 1)]


def test_shorter_distance_wins_when_no_node_is_in_region():
    # Hangzhou (Zhejiang): Shanghai is ~165 km away, Guangzhou ~1000 km, Beijing ~1100 km.
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("DC-BJ", region="Beijing", at=BEIJING, ship_cost=1.0),
        e.node("DC-GZ", region="Guangdong", at=GUANGZHOU, ship_cost=1.0),
        e.node("DC-SH", region="Shanghai", at=SHANGHAI, ship_cost=9.0),
        stock={"DC-BJ": 10, "DC-GZ": 10, "DC-SH": 10},
    )
    assert place(sim, 1, region="Zhejiang", ship_to=HANGZHOU) == [("O1", "1", "DC-SH", 1)]


def test_lower_ship_cost_breaks_a_distance_tie():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("A-PRICEY", at=CHENGDU, region="Sichuan", ship_cost=8.0),
        e.node("B-CHEAP", at=CHENGDU, region="Sichuan", ship_cost=3.0),
        stock={"A-PRICEY": 10, "B-CHEAP": 10},
    )
    assert place(sim, 1, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "B-CHEAP", 1)]


def test_unknown_ship_cost_ranks_after_any_known_cost():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("A-UNKNOWN", at=CHENGDU, region="Sichuan", ship_cost=None),
        e.node("B-COSTLY", at=CHENGDU, region="Sichuan", ship_cost=99.0),
        stock={"A-UNKNOWN": 10, "B-COSTLY": 10},
    )
    assert place(sim, 1, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "B-COSTLY", 1)]


def test_node_id_breaks_a_full_tie():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("N-2", at=CHENGDU, region="Sichuan"),
        e.node("N-1", at=CHENGDU, region="Sichuan"),
        stock={"N-2": 10, "N-1": 10},
    )
    assert place(sim, 1, region="Shanghai", ship_to=SHANGHAI) == [("O1", "1", "N-1", 1)]


def test_unpaid_line_is_held_at_the_best_node():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("DC-GZ", region="Guangdong", at=GUANGZHOU),
        e.node("DC-SH", region="Shanghai", at=SHANGHAI),
        stock={"DC-SH": 10, "DC-GZ": 10},
    )
    out = sim.feed(sim.ev.order("O1", [(SKU, 2)], region="Guangdong", ship_to=SHENZHEN))
    assert statuses(out) == [("O1", "1", "held", "DC-GZ", 2)]


# -- splitting ---------------------------------------------------------------------------


def test_split_is_greedy_by_rank_when_no_node_fills_the_line():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("FAR", region="Beijing", at=BEIJING),
        e.node("MID", region="Guangdong", at=GUANGZHOU),
        e.node("NEAR", region="Zhejiang", at=HANGZHOU),
        split=True, stock={"FAR": 5, "MID": 3, "NEAR": 2},
    )
    assert place(sim, 6, region="Zhejiang", ship_to=HANGZHOU) == [
        ("O1", "1", "NEAR", 2), ("O1", "1", "MID", 3), ("O1", "1", "FAR", 1),
    ]
    assert sim.pos(SKU, "FAR").allocated == 1
    assert sim.pos(SKU, "MID").allocated == 3
    assert sim.pos(SKU, "NEAR").allocated == 2


def test_unpaid_split_line_gets_one_held_status_per_node():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("A", region="Shanghai", at=SHANGHAI),
        e.node("B", region="Guangdong", at=GUANGZHOU),
        split=True, stock={"A": 2, "B": 2},
    )
    out = sim.feed(sim.ev.order("O1", [(SKU, 3)], region="Shanghai", ship_to=SHANGHAI))
    assert sorted(statuses(out)) == [("O1", "1", "held", "A", 2), ("O1", "1", "held", "B", 1)]
    assert not of(out, DispatchAllocate)


def test_no_split_when_the_channel_does_not_allow_it():
    sim = Sim()
    e = sim.ev
    world(sim, e.node("A"), e.node("B", at=GUANGZHOU, region="Guangdong"),
                split=False, stock={"A": 2, "B": 2})
    # together A and B would fill it: the status says the channel's rule, not a lack of stock
    assert rejection(sim, 3) == ("rejected", "split_not_allowed")
    assert sim.pos(SKU, "A").allocated == sim.pos(SKU, "B").allocated == 0


def test_pickup_is_never_split_even_when_the_channel_allows_splits():
    sim = Sim()
    e = sim.ev
    world(
        sim,
        e.node("ST-1", kind="store", can_pickup=True),
        e.node("ST-2", kind="store", can_pickup=True),
        split=True, stock={"ST-1": 2, "ST-2": 5},
    )
    assert rejection(sim, 3, pickup_node="ST-1") == ("rejected", "no_stock")


def test_line_is_not_partly_filled_when_total_stock_falls_short():
    sim = Sim()
    e = sim.ev
    world(sim, e.node("A"), e.node("B", at=GUANGZHOU, region="Guangdong"),
                split=True, stock={"A": 2, "B": 2})
    assert rejection(sim, 5) == ("rejected", "no_stock")
    assert sim.pos(SKU, "A").allocated == sim.pos(SKU, "B").allocated == 0


# -- ATP ---------------------------------------------------------------------------------


def test_atp_subtracts_safety_stock():
    sim = Sim()
    world(sim, sim.ev.node("A"), stock={"A": 10})
    sim.feed(sim.ev.policy(SKU, "A", safety_stock=7))
    assert rejection(sim, 4) == ("rejected", "no_stock")
    out = sim.feed(sim.ev.order("O2", [(SKU, 3)], paid=True))
    assert allocations(out) == [("O2", "1", "A", 3)]


def test_atp_subtracts_holds_and_allocations():
    sim = Sim()
    world(sim, sim.ev.node("A"), stock={"A": 5})
    e = sim.ev
    sim.feed(e.order("HOLD", [(SKU, 2)]), e.order("ALLOC", [(SKU, 2)], paid=True))
    out = sim.feed(e.order("O3", [(SKU, 2)], paid=True))
    assert [(s[2], s[4]) for s in statuses(out)] == [("rejected", 2)]
    out = sim.feed(e.order("O4", [(SKU, 1)], paid=True))
    assert allocations(out) == [("O4", "1", "A", 1)]


def test_inbound_due_within_the_horizon_is_sellable():
    sim = Sim()
    world(sim, sim.ev.node("A"))
    e = sim.ev
    # the inbound is announced one second before the order: ETA = order time + 3 days exactly
    sim.feed(e.inbound("PO-1", SKU, "A", 4, eta_s=3 * DAY + 1))
    out = sim.feed(e.order("O1", [(SKU, 4)], paid=True))
    assert allocations(out) == [("O1", "1", "A", 4)]


def test_inbound_due_after_the_horizon_is_not_sellable():
    sim = Sim()
    world(sim, sim.ev.node("A"))
    e = sim.ev
    sim.feed(e.inbound("PO-1", SKU, "A", 4, eta_s=3 * DAY + 2))  # one second too late
    out = sim.feed(e.order("O1", [(SKU, 4)], paid=True))
    assert statuses(out) == [("O1", "1", "rejected", None, 4)]


def test_inbound_horizon_is_configurable():
    sim = Sim(inbound_horizon_s=3600)
    e = sim.ev
    sim.feed(e.node("A"), e.channel("web"), e.inbound("PO-1", SKU, "A", 4, eta_s=2 * 3600))
    out = sim.feed(e.order("O1", [(SKU, 4)], paid=True))
    assert statuses(out) == [("O1", "1", "rejected", None, 4)]


def test_inbound_and_on_hand_add_up():
    sim = Sim()
    world(sim, sim.ev.node("A"), stock={"A": 3})
    e = sim.ev
    sim.feed(e.inbound("PO-1", SKU, "A", 4, eta_s=DAY))
    out = sim.feed(e.order("O1", [(SKU, 7)], paid=True))
    assert allocations(out) == [("O1", "1", "A", 7)]
