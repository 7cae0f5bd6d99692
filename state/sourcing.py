"""Sourcing: which node(s) fill an order line.

Eligible nodes are the channel's active nodes with the capability the line needs (ship, or
pickup at its `pickup_node` only). Rank: a node that fills the whole line first, then the
ship-to's region, then shorter distance, then lower ship cost, then node id, so every
decision is reproducible from the input alone. A line is split across nodes only when its
channel allows it; a line is either filled completely or not at all.
"""

from __future__ import annotations

from math import inf

from .book import SkuBook
from .geo import haversine_km
from .lines import Line
from .master import Catalog

Parts = list[tuple[str, int]]

# What each field of `rank_key` compares, in its order (explain.py names the deciding one).
RANKS = ("region", "distance_km", "ship_cost", "node")


def rank_key(catalog: Catalog, node_id: str, region: str, lat: float, lon: float) -> tuple:
    node = catalog.nodes[node_id]
    return (
        node.region != region,
        haversine_km(lat, lon, node.lat, node.lon),
        inf if node.ship_cost is None else node.ship_cost,
        node_id,
    )


def source_line(
    line: Line,
    qty: int,
    book: SkuBook,
    catalog: Catalog,
    until_ms: int,
    exclude: str | None = None,
) -> Parts | None:
    """Nodes and units that fill `qty` of the line, best first; None when it cannot be filled.

    `until_ms` bounds which inbound supply counts as sellable; `exclude` is a node that must
    not be used (the one a shortage is taking units back from). A node whose lower count is
    held back gives only what that count allows.
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
        atp = pos.atp(until_ms) - kept_out.get(node_id, 0)
        if atp > 0:
            available.append((node_id, atp))
    if not available:
        return None
    whole = [node_id for node_id, atp in available if atp >= qty]
    if whole:
        if len(whole) == 1:
            return [(whole[0], qty)]
        best = min(whole, key=lambda n: rank_key(catalog, n, line.region, line.lat, line.lon))
        return [(best, qty)]
    if not channel.allow_split or line.fulfillment == "pickup":
        return None
    if sum(atp for _, atp in available) < qty:
        return None
    available.sort(key=lambda na: rank_key(catalog, na[0], line.region, line.lat, line.lon))
    parts: Parts = []
    need = qty
    for node_id, atp in available:
        take = min(atp, need)
        parts.append((node_id, take))
        need -= take
        if need == 0:
            break
    return parts


def why_unfilled(line: Line, book: SkuBook, catalog: Catalog, until_ms: int,
                 exclude: str | None = None) -> str:
    """The reason a whole line could not be sourced, for its status: unknown_channel,
    no_eligible_node, split_not_allowed (no node fills it, the eligible nodes together
    would, and its channel does not split lines) or no_stock."""
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
            pooled += max(0, pos.atp(until_ms) - kept_out.get(node_id, 0))
    # source_line fills a line the pool covers unless no node fills it and it may not split
    return "split_not_allowed" if pooled >= line.qty else "no_stock"
