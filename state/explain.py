"""Why a line was sourced where it was: the candidates, what each had, the ranks that decided.

`explain_sourcing` describes one call of `source_line` from the same book, master data and
functions (`Catalog.channel_nodes`, `Catalog.can_fulfil`, `Position.atp`, `rank_key`,
`why_unfilled`), with the nodes in the order sourcing applies its ranks: a node that fills
the whole quantity first, then `rank_key`. The nodes chosen are the decision's own `parts`,
passed in, so an explanation never claims a decision the engine did not make;
`ranked_choice` rederives them from the ranking, and the tests hold the two equal.

`Explainer` is the ledger's `SourcingObserver` for one order; the engine runs without one.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from .book import SkuBook
from .config import DEFAULT_RANK
from .context import Ctx
from .lines import Line
from .master import Catalog
from .sourcing import Parts, line_key, rank_key, rank_names, why_unfilled
from .supply_policy import SupplyView, channel_atp, counted_inbound

# What started a sourcing, by the reason its statuses carry (None: the line's first placement)
TRIGGERS = {
    None: "placement",
    "revived_by_payment": "payment",
    "backorder_filled": "backorder_fill",
    "moved_by_shortage": "shortage",
}


class NodeView(msgspec.Struct, kw_only=True):
    """One node as sourcing saw it. `rank` (1 = best) is given to nodes with ATP > 0, the
    ones sourcing chooses from; `ineligible` says why a node was not a candidate."""

    node: str
    rank: int | None = None
    ineligible: str | None = None  # inactive, not_in_channel, cannot_ship, not_pickup_store,
    # no_pickup_counter, shortage_node (the node a shortage takes units back from)
    atp: int = 0  # on hand + inbound counted - held - allocated - transfers out - safety
    on_hand: int = 0
    inbound_due: int = 0  # inbound the channel counts (by its supply policy, else due
    # within the engine's horizon)
    held: int = 0
    allocated: int = 0
    transfer_out: int = 0  # reserved for transfers not yet shipped
    safety_stock: int = 0
    kept_out: int = 0  # units a quarantined lower count keeps out of ATP
    now: int = 0  # what on hand gives now (`Position.gives_now`): beyond it, a promise date
    protected: int = 0  # units kept here for other channels (wos.py) or regions (regional_reserve)
    fills: bool = False  # ATP covers the whole quantity
    same_region: bool = False
    distance_km: float = 0.0
    ship_cost: float | None = None
    won: int = 0  # units the decision took here


class Sourcing(msgspec.Struct, kw_only=True):
    """One sourcing of one line: what was asked, who could fill it, what was decided."""

    order_id: str
    line_id: str
    sku: str
    trigger: str  # placement, payment, backorder_fill, shortage
    cause: str  # the input event being applied
    ts: datetime | None
    qty: int  # units sought (a shortage may move only part of a split line)
    channel: str
    allow_split: bool
    fulfillment: str
    pickup_node: str | None
    region: str
    lat: float
    lon: float
    nodes: list[NodeView]  # ranked candidates best first, then no ATP, then ineligible
    parts: Parts | None  # the decision: (node, units), None when not filled
    decided_by: str | None  # the rank that separated the winner from the next candidate
    unfilled: str | None  # why not filled (the line's status reason)
    rank: tuple[str, ...] = DEFAULT_RANK  # the engine's sourcing_rank


def explain_sourcing(line: Line, qty: int, book: SkuBook, catalog: Catalog, until_ms: int,
                     exclude: str | None, parts: Parts | None, reason: str | None = None,
                     sku: str = "", cause: str = "", ts: datetime | None = None,
                     rank: tuple[str, ...] = DEFAULT_RANK,
                     view: SupplyView | None = None,
                     protected: dict[str, int] | None = None) -> Sourcing:
    """The explanation of `source_line(line, qty, book, catalog, until_ms, exclude) == parts`,
    made from the same book before anything is committed; `view`: what the line's channel
    counts of inbound supply (None: the engine's view); `protected`: node -> units kept
    there for other channels' weeks of supply."""
    channel = catalog.channels.get(line.channel)
    members = catalog.channel_nodes(line.channel)
    kept_out = book.kept_out()
    protected = protected or {}
    supply = view
    views: list[NodeView] = []
    for node_id in sorted(catalog.nodes):
        view = _view(line, qty, book, catalog, until_ms, node_id, kept_out, supply, protected)
        view.ineligible = _ineligible(line, catalog, members, node_id, exclude)
        views.append(view)
    ranked = [v for v in views if v.ineligible is None and v.atp > 0]
    ranked.sort(key=lambda v: _order_key(v, qty, line, catalog, rank))
    for i, view in enumerate(ranked, 1):
        view.rank = i
    won = dict(parts or ())
    for view in views:
        view.won = won.get(view.node, 0)
    idle = [v for v in views if v.ineligible is None and v.atp <= 0]
    barred = [v for v in views if v.ineligible is not None]
    trigger = TRIGGERS.get(reason, reason or "placement")
    unfilled = None
    if parts is None:
        unfilled = "shortage" if trigger == "shortage" else why_unfilled(
            line, book, catalog, until_ms, exclude, supply, protected)
    return Sourcing(
        order_id=line.order_id, line_id=line.line_id, sku=sku, trigger=trigger, cause=cause,
        ts=ts, qty=qty, channel=line.channel,
        allow_split=channel is not None and channel.allow_split,
        fulfillment=line.fulfillment, pickup_node=line.pickup_node, region=line.region,
        lat=line.lat, lon=line.lon, nodes=ranked + idle + barred, parts=parts,
        decided_by=_decided_by(ranked, parts, qty, line, catalog, rank), unfilled=unfilled,
        rank=rank,
    )


def ranked_choice(sourcing: Sourcing) -> Parts | None:
    """The parts the ranking gives by sourcing's rules: the best node if it fills the line,
    else (a ship line of a channel that splits) the ranked nodes greedily, else nothing."""
    ranked = [v for v in sourcing.nodes if v.rank is not None]
    if not ranked:
        return None
    splits = sourcing.allow_split and sourcing.fulfillment != "pickup"
    fills = [v for v in ranked if v.fills]
    if fills and (sourcing.rank[0] == "whole_line" or not splits):
        return [(fills[0].node, sourcing.qty)]
    if not splits:
        return None
    if sum(v.atp for v in ranked) < sourcing.qty:
        return None
    parts: Parts = []
    need = sourcing.qty
    for view in ranked:
        take = min(view.atp, need)
        parts.append((view.node, take))
        need -= take
        if need == 0:
            break
    return parts


def _view(line: Line, qty: int, book: SkuBook, catalog: Catalog, until_ms: int, node_id: str,
          kept_out: dict[str, int], supply: SupplyView | None,
          protected: dict[str, int]) -> NodeView:
    node = catalog.nodes[node_id]
    key = rank_key(catalog, node_id, line.region, line.lat, line.lon)  # the default order
    view = NodeView(node=node_id, same_region=node.region == line.region,
                    distance_km=round(key[1], 1),
                    ship_cost=node.ship_cost)
    pos = book.positions.get(node_id)
    if pos is not None:
        view.on_hand = pos.on_hand
        if supply is not None:
            view.inbound_due = counted_inbound(pos, supply, until_ms)
        elif pos.inbound is not None:
            view.inbound_due = pos.inbound.due_by(until_ms)
        view.held, view.allocated, view.safety_stock = pos.held, pos.allocated, pos.safety_stock
        view.transfer_out = pos.transfer_out
        view.kept_out = kept_out.get(node_id, 0)
        view.now = pos.gives_now(view.kept_out)
        view.protected = protected.get(node_id, 0)
        view.atp = channel_atp(pos, until_ms, supply) - view.kept_out - view.protected
    view.fills = view.atp >= qty
    return view


def _ineligible(line: Line, catalog: Catalog, members: frozenset[str], node_id: str,
                exclude: str | None) -> str | None:
    """Why sourcing does not look at this node, or None when it is a candidate."""
    if node_id not in members:  # the channel's active nodes
        channel = catalog.channels.get(line.channel)
        listed = channel is not None and (channel.all_nodes or node_id in channel.nodes)
        return "inactive" if listed and not catalog.nodes[node_id].active else "not_in_channel"
    if node_id == exclude:
        return "shortage_node"
    if catalog.can_fulfil(node_id, line.fulfillment, line.pickup_node):
        return None
    if line.fulfillment == "pickup":
        return "not_pickup_store" if node_id != line.pickup_node else "no_pickup_counter"
    return "cannot_ship"


def _order_key(view: NodeView, qty: int, line: Line, catalog: Catalog,
               rank: tuple[str, ...]) -> tuple:
    """The order sourcing applies its ranks in (`sourcing.line_key`)."""
    return line_key(catalog, view.node, view.atp, qty, line, rank)


def _decided_by(ranked: list[NodeView], parts: Parts | None, qty: int, line: Line,
                catalog: Catalog, rank: tuple[str, ...]) -> str | None:
    """A name of `rank_names`, `only_candidate` or `split`: what put the winner first."""
    if parts is None or not ranked:
        return None
    if len(parts) > 1:
        return "split"
    if len(ranked) == 1:
        return "only_candidate"
    first, second = (_order_key(v, qty, line, catalog, rank) for v in ranked[:2])
    for name, a, b in zip(rank_names(rank), first, second):
        if a != b:
            return name
    return None  # two keys equal: cannot happen, node ids differ


class Explainer:
    """The ledger's `SourcingObserver` for one order: an explanation of each of its sourcings."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.sourcings: list[Sourcing] = []

    def sourced(self, ctx: Ctx, line: Line, qty: int, exclude: str | None,
                parts: Parts | None, reason: str | None) -> None:
        if line.order_id != self.order_id:
            return
        self.sourcings.append(explain_sourcing(
            line, qty, ctx.book, ctx.catalog, ctx.until_ms, exclude, parts, reason,
            sku=ctx.sku, cause=ctx.emit.cause, ts=ctx.emit.ts, rank=ctx.rank,
            view=ctx.view(line.channel), protected=ctx.guard(line),
        ))
