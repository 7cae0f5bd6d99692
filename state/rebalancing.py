"""Rebalancing: move stock toward the regions that buy it, before they run out.

Demand is learned from the stream: the units of every new order line (`order.created`, placed
or not: a region turned away is the one to move stock toward), per SKU, per day of event time
and per *home region*: the ship-to's region where some active node stands, else the region of
the nearest active node (the one that would serve it). A region's stock is what its active
nodes have beyond their commitments and safety stock, in transit included; its weeks of cover
are that stock over its units ordered per week in the last `window` whole days.

Once a day per SKU, at the sweep that begins the day (sweep.py; as slow movers are judged),
every region that ordered at least `min_units` in the window and whose cover is
below `cover_weeks` is sent one transfer toward `cover_weeks`, lowest cover first: from the
nearest node of a region whose cover stays at or above `surplus_weeks` after giving, of no
more than that node's ATP above its reorder point. The transfer is reserved at the source and
counted in transit at the destination like any other (`transfers.py`); its reason gives the
figures.
"""

from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from .geo import haversine_km
from .slow_movers import day_of
from .transfers import TransferTerms, open_transfer

if TYPE_CHECKING:
    from .config import EngineConfig
    from .context import Ctx
    from .events import ShipTo
    from .master import Catalog


class RegionDemand(msgspec.Struct, array_like=True, gc=False):  # gc=False: see inbound.py
    """Units ordered per day and home region of one SKU."""

    day: int  # the newest day counted, in days since the epoch (event time)
    units: dict[str, list[int]]  # region -> a ring: day d at [d % ring]


class RebalanceRule(NamedTuple):
    window: int  # days of orders a region's weekly demand is read from
    cover_weeks: float  # a region below this cover is sent stock, up to it
    surplus_weeks: float  # a region gives only what lies above this cover
    min_units: int  # a region that ordered fewer units in the window is not judged

    @property
    def ring(self) -> int:
        return self.window + 1  # the window, and today still being counted


def rule_of(config: EngineConfig) -> RebalanceRule | None:
    """The rule, or None where it is off (no `rebalance_cover_weeks`)."""
    if config.rebalance_cover_weeks is None:
        return None
    return RebalanceRule(config.rebalance_window_days, config.rebalance_cover_weeks,
                         config.rebalance_surplus_weeks, config.rebalance_min_units)


def home_region(catalog: Catalog, region: str, lat: float, lon: float) -> str:
    """The region whose nodes serve a ship-to: its own if a node stands there, else the
    nearest active node's."""
    nearest: tuple[float, str] | None = None
    for node in catalog.nodes.values():
        if not node.active:
            continue
        if node.region == region:
            return region
        key = (haversine_km(lat, lon, node.lat, node.lon), node.id)
        if nearest is None or key < nearest:
            nearest, home = key, node.region
    return region if nearest is None else home


def count_demand(ctx: Ctx, ship_to: ShipTo, qty: int, rule: RebalanceRule) -> None:
    """`qty` units ordered today for delivery to `ship_to` (counted in its home region)."""
    region = home_region(ctx.catalog, ship_to.region, ship_to.lat, ship_to.lon)
    today = day_of(ctx.clock_ms)
    demand = ctx.book.demand
    if demand is None:
        demand = ctx.book.demand = RegionDemand(today, {})
    else:
        _roll(demand, today, rule.ring)
    units = demand.units.get(region)
    if units is None:
        units = demand.units[region] = [0] * rule.ring
    units[today % rule.ring] += qty


def due(ctx: Ctx) -> bool:
    """Whether the SKU has orders counted and a new day came since it was last judged."""
    demand = ctx.book.demand
    return demand is not None and demand.day < day_of(ctx.clock_ms)


def judge(ctx: Ctx, rule: RebalanceRule, terms: TransferTerms) -> None:
    """A new day for the SKU: suggest transfers toward regions short of cover; forget its
    demand once it ordered nothing for a whole window."""
    today = day_of(ctx.clock_ms)
    demand = ctx.book.demand
    _roll(demand, today, rule.ring)
    ordered = {region: sum(units[d % rule.ring] for d in range(today - rule.window, today))
               for region, units in demand.units.items()}
    if max(ordered.values(), default=0) >= rule.min_units:  # else nothing to judge: no stock read
        stock, nodes = _stock(ctx)
        short = []
        for region, units in ordered.items():
            if units < rule.min_units or region not in nodes:
                continue
            weekly = units * 7 / rule.window
            if stock[region] < ceil(rule.cover_weeks * weekly):
                short.append((stock[region] / weekly, region))
        for i, (_, region) in enumerate(sorted(short)):
            if i:
                stock, _ = _stock(ctx)  # what the transfers judged before moved
            _top_up(ctx, region, ordered, stock, nodes, rule, terms)
    demand.units = {r: units for r, units in demand.units.items() if any(units)}
    if not demand.units:
        ctx.book.demand = None


def _top_up(ctx: Ctx, region: str, ordered: dict[str, int], stock: dict[str, int],
            nodes: dict[str, list[str]], rule: RebalanceRule, terms: TransferTerms) -> None:
    weekly = ordered[region] * 7 / rule.window
    need = ceil(rule.cover_weeks * weekly) - stock[region]
    to_node = nodes[region][0]
    here = ctx.catalog.nodes[to_node]
    kept_out = ctx.book.kept_out()
    best = None
    for donor, members in nodes.items():
        donor_weekly = ordered.get(donor, 0) * 7 / rule.window
        surplus = stock[donor] - ceil(rule.surplus_weeks * donor_weekly)
        if donor == region or surplus <= 0:
            continue
        for node_id in members:
            pos = ctx.book.positions.get(node_id)
            if pos is None:
                continue
            kept = kept_out.get(node_id, 0)
            spare = min(pos.atp(ctx.until_ms) - kept - (pos.reorder_point or 0),
                        pos.gives_now(kept))  # a transfer ships now, from the shelf
            give = min(need, surplus, spare)
            if give <= 0:
                continue
            there = ctx.catalog.nodes[node_id]
            key = (haversine_km(here.lat, here.lon, there.lat, there.lon), -give, node_id)
            if best is None or key < best[0]:
                best = (key, node_id, donor, give, donor_weekly)
    if best is None:
        return
    _, from_node, donor, qty, donor_weekly = best
    reason = (
        f"rebalance: {region} ordered {ordered[region]} in {rule.window} days, its stock "
        f"{stock[region]} covers {_weeks(stock[region], weekly)} (below {rule.cover_weeks:g}); "
        f"{donor} ordered {ordered.get(donor, 0)}, its stock {stock[donor]} covers "
        f"{_weeks(stock[donor], donor_weekly)} (above {rule.surplus_weeks:g})"
    )
    open_transfer(ctx, from_node, to_node, qty, reason, terms)


def _weeks(stock: int, weekly: float) -> str:
    return "any number of weeks" if not weekly else f"{stock / weekly:.1f} weeks"


def _stock(ctx: Ctx) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Per region: the units its active nodes have beyond commitments and safety stock (in
    transit included), and its active nodes, the one a transfer goes to first."""
    stock: dict[str, int] = {}
    nodes: dict[str, list[tuple]] = {}
    kept_out = ctx.book.kept_out()
    positions = ctx.book.positions
    for node in ctx.catalog.nodes.values():
        if not node.active:
            continue
        nodes.setdefault(node.region, []).append(
            (not node.can_ship, node.kind != "dc", node.id))
        pos = positions.get(node.id)
        free = 0 if pos is None else (pos.supply - pos.committed - pos.safety_stock
                                      - kept_out.get(node.id, 0))
        stock[node.region] = stock.get(node.region, 0) + max(0, free)
    return stock, {region: [key[-1] for key in sorted(keys)] for region, keys in nodes.items()}


def _roll(demand: RegionDemand, today: int, ring: int) -> None:
    """Move every region's ring to `today`: days it passed over ordered nothing."""
    if today <= demand.day:
        return
    for region, units in demand.units.items():
        if len(units) != ring:  # the window was configured otherwise when this was kept
            units = demand.units[region] = [0] * ring
        for day in range(max(demand.day + 1, today - ring + 1), today + 1):
            units[day % ring] = 0
    demand.day = today
