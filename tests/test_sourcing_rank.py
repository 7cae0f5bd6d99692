"""Sourcing's order of preference (`EngineConfig.sourcing_rank`): each aspect moved changes
which node a line goes to, and the default is today's order."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.state.config import DEFAULT_RANK, EngineConfig

from .scenario import BEIJING, GUANGZHOU, HANGZHOU, SHANGHAI, Sim, allocations

SKU = "SKU-1"


def world(rank, split: bool, stock: dict[str, int]) -> Sim:
    """LOCAL in Shanghai (costly), CHEAP in Guangzhou, FAR in Beijing; channel `web`."""
    sim = Sim(sourcing_rank=tuple(rank))
    e = sim.ev
    sim.feed(
        e.node("LOCAL", region="Shanghai", at=SHANGHAI, ship_cost=9.0),
        e.node("CHEAP", region="Guangdong", at=GUANGZHOU, ship_cost=1.0),
        e.node("FAR", region="Beijing", at=BEIJING, ship_cost=5.0),
        e.channel("web", allow_split=split),
    )
    for node, qty in stock.items():
        sim.feed(e.snapshot(SKU, node, qty))
    return sim


def place(sim: Sim, qty: int) -> list[tuple]:
    out = sim.feed(sim.ev.order("O1", [(SKU, qty)], paid=True, region="Shanghai",
                                ship_to=SHANGHAI))
    return [(node, n) for _, _, node, n in allocations(out)]


def test_the_default_keeps_the_ship_to_region_first():
    sim = world(DEFAULT_RANK, split=False, stock={"LOCAL": 5, "CHEAP": 5})
    assert place(sim, 2) == [("LOCAL", 2)]


def test_cost_before_region_sends_the_line_to_the_cheaper_node():
    sim = world(("whole_line", "cost", "region", "distance"), split=False,
                stock={"LOCAL": 5, "CHEAP": 5})
    assert place(sim, 2) == [("CHEAP", 2)]


def test_distance_before_region_prefers_the_nearer_node_of_another_region():
    # The ship-to is Hangzhou (Zhejiang): LOCAL (Shanghai) is near, no node is in region,
    # so put FAR in the ship-to's region to tell the two orders apart.
    for rank, want in ((DEFAULT_RANK, "FAR"), (("whole_line", "distance", "region", "cost"),
                                                "LOCAL")):
        sim = world(rank, split=False, stock={"LOCAL": 5, "FAR": 5})
        out = sim.feed(sim.ev.order("O1", [(SKU, 1)], paid=True, region="Beijing",
                                    ship_to=HANGZHOU))
        assert [a[2] for a in allocations(out)] == [want]


def test_region_before_whole_line_splits_to_keep_units_in_region():
    stock = {"LOCAL": 2, "CHEAP": 5}
    assert place(world(DEFAULT_RANK, split=True, stock=stock), 3) == [("CHEAP", 3)]
    sim = world(("region", "whole_line", "distance", "cost"), split=True, stock=stock)
    assert place(sim, 3) == [("LOCAL", 2), ("CHEAP", 1)]


def test_a_line_that_may_not_split_still_goes_whole_whatever_the_rank():
    sim = world(("region", "whole_line", "distance", "cost"), split=False,
                stock={"LOCAL": 2, "CHEAP": 5})
    assert place(sim, 3) == [("CHEAP", 3)]


@pytest.mark.parametrize("rank", [["region", "region", "distance", "cost"],
                                  ["whole_line", "region", "distance"],
                                  ["whole_line", "region", "distance", "price"]])
def test_a_rank_must_name_every_aspect_once(rank):
    with pytest.raises(msgspec.ValidationError, match="sourcing_rank"):
        msgspec.convert({"sourcing_rank": rank}, EngineConfig)


ranks = st.permutations(list(DEFAULT_RANK))
stocks = st.fixed_dictionaries({n: st.integers(0, 6) for n in ("LOCAL", "CHEAP", "FAR")})


@settings(max_examples=60, deadline=None)
@given(rank=ranks, split=st.booleans(), stock=stocks, qty=st.integers(1, 10))
def test_any_rank_fills_a_line_whole_or_not_at_all_within_stock(rank, split, stock, qty):
    sim = world(rank, split, stock)
    parts = place(sim, qty)
    assert sum(n for _, n in parts) in (0, qty)
    assert all(n <= stock[node] for node, n in parts)
    if not split:
        assert len(parts) <= 1
    if parts and rank[0] == "whole_line" and max(stock.values()) >= qty:
        assert len(parts) == 1  # one node fills it: no split
