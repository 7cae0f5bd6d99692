"""Sourcing: which node(s) fill an order line.

Eligible nodes are the channel's active nodes with the capability the line needs (ship, or
pickup at its `pickup_node` only). Rank: a node that fills the whole line first, then the
ship-to's region, then shorter distance, then lower ship cost, then node id, so every
decision is reproducible from the input alone. A line is split across nodes only when its
channel allows it; a line is either filled completely or not at all.

`EngineConfig.sourcing_rank` reorders the first four. With `whole_line` after another aspect,
a splittable line takes its units greedily in that order, so a partial node in the ship-to's
region can come before a distant one that holds it all; a line that may not split still goes
to the best node that fills it.
"""

from __future__ import annotations

from math import inf

from .book import SkuBook
from .config import DEFAULT_RANK
from .events import Channel
from .geo import haversine_km
from .lines import Line
from .master import Catalog
from .position import Position
from .supply_policy import SupplyView, channel_atp

Parts = list[tuple[str, int]]

# What each field of `line_key` compares, by the aspect of `sourcing_rank` it stands for
# (explain.py names the deciding one); the node id breaks ties last.
RANK_NAMES = {"whole_line": "fills", "region": "region", "distance": "distance_km",
              "cost": "ship_cost"}


def rank_names(rank: tuple[str, ...] = DEFAULT_RANK) -> tuple[str, ...]:
    """The names of `line_key`'s fields, in its order."""
    return (*(RANK_NAMES[a] for a in rank), "node")


def rank_key(catalog: Catalog, node_id: str, region: str, lat: float, lon: float,
             rank: tuple[str, ...] = DEFAULT_RANK) -> tuple:
    """How a node ranks for a ship-to, lower first: region, distance and cost in `rank`'s
    order (`whole_line` is the caller's: it depends on the line), then node id."""
    node = catalog.nodes[node_id]
    elsewhere = node.region != region
    km = haversine_km(lat, lon, node.lat, node.lon)
    cost = inf if node.ship_cost is None else node.ship_cost
    if rank == DEFAULT_RANK:  # the usual case, without building a dict
        return (elsewhere, km, cost, node_id)
    aspects = {"region": elsewhere, "distance": km, "cost": cost}
    return (*(aspects[a] for a in rank if a != "whole_line"), node_id)


def line_key(catalog: Catalog, node_id: str, atp: int, qty: int, line: Line,
              rank: tuple[str, ...]) -> tuple:
    """`rank_key` with `whole_line` (the node cannot fill `qty` alone) at its place in `rank`."""
    key = rank_key(catalog, node_id, line.region, line.lat, line.lon, rank)
    at = rank.index("whole_line")
    return (*key[:at], atp < qty, *key[at:])


def source_line(
    line: Line,
    qty: int,
    book: SkuBook,
    catalog: Catalog,
    until_ms: int,
    exclude: str | None = None,
    rank: tuple[str, ...] = DEFAULT_RANK,
    view: SupplyView | None = None,
    protected: dict[str, int] | None = None,
) -> Parts | None:
    """Nodes and units that fill `qty` of the line, best first; None when it cannot be filled.

    `until_ms` bounds which inbound supply counts as sellable; `exclude` is a node that must
    not be used (the one a shortage is taking units back from). A node whose lower count is
    held back gives only what that count allows. `rank` is the engine's `sourcing_rank`;
    `view` what the line's channel counts of inbound supply (None: all due by `until_ms`);
    `protected` node -> units kept there for other channels' weeks of supply (wos.py).
    """
    channel = catalog.channels.get(line.channel)
    if channel is None:
        return None
    members = catalog.channel_nodes(line.channel)
    available: list[tuple[str, int]] = []
    kept_out = book.kept_out()
    for node_id, pos in book.positions.items():
        if node_id == exclude or node_id not in members:
            continue
        if not catalog.can_fulfil(node_id, line.fulfillment, line.pickup_node):
            continue
        atp = sellable(pos, until_ms, view) - kept_out.get(node_id, 0)
        if protected:
            atp -= protected.get(node_id, 0)
        if atp > 0:
            available.append((node_id, atp))
    if not available:
        return None
    whole = [node_id for node_id, atp in available if atp >= qty]
    splits = may_split(channel, line)
    if whole and (rank[0] == "whole_line" or not splits):
        if len(whole) == 1:
            return [(whole[0], qty)]
        best = min(whole, key=lambda n: rank_key(catalog, n, line.region, line.lat, line.lon,
                                                 rank))
        return [(best, qty)]
    if not splits:
        return None
    if sum(atp for _, atp in available) < qty:
        return None
    available.sort(key=lambda na: line_key(catalog, na[0], na[1], qty, line, rank))
    parts: Parts = []
    need = qty
    for node_id, atp in available:
        take = min(atp, need)
        parts.append((node_id, take))
        need -= take
        if need == 0:
            break
    return parts


def may_split(channel: Channel, line: Line) -> bool:
    """The line may be filled from several nodes: a ship line of a channel that splits."""
    return channel.allow_split and line.fulfillment != "pickup"


def sellable(pos: Position, until_ms: int, view: SupplyView | None) -> int:
    """ATP at a node as the line's channel counts it (`view`; None: the engine's), before
    held-back counts and protection."""
    return pos.atp(until_ms) if view is None else channel_atp(pos, until_ms, view)


def why_unfilled(line: Line, book: SkuBook, catalog: Catalog, until_ms: int,
                 exclude: str | None = None, view: SupplyView | None = None,
                 protected: dict[str, int] | None = None) -> str:
    """The reason a whole line could not be sourced, for its status: unknown_channel,
    no_eligible_node, split_not_allowed (no node fills it, the eligible nodes together
    would, and its channel does not split lines) or no_stock (units protected for other
    channels, `protected`, are not the line's stock)."""
    if line.channel not in catalog.channels:
        return "unknown_channel"
    members = catalog.channel_nodes(line.channel)
    eligible = [n for n in members if catalog.can_fulfil(n, line.fulfillment, line.pickup_node)]
    if not eligible:
        return "no_eligible_node"
    kept_out = book.kept_out()
    pooled = 0
    for node_id in eligible:
        pos = book.positions.get(node_id)
        if pos is not None and node_id != exclude:
            pooled += max(0, channel_atp(pos, until_ms, view) - kept_out.get(node_id, 0)
                          - (protected.get(node_id, 0) if protected else 0))
    # source_line fills a line the pool covers unless no node fills it and it may not split
    return "split_not_allowed" if pooled >= line.qty else "no_stock"
