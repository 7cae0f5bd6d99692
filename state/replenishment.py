"""Replenishment: a node whose ATP falls below its reorder point asks for stock, once.

The request tops ATP back up to the policy's `order_up_to` (default twice the reorder point):
a transfer from the nearest node whose surplus (ATP above its own reorder point) covers it,
as what its on hand gives now does (`Position.gives_now`: a transfer ships now, from the
shelf), reserved there and counted in transit here (`transfers.py`); else a purchase. No
repeat while that request is open; it closes when ATP is back at or above the reorder point.
Under smart replenishment (smart_replenishment.py) both points are the learnt ones once a
node knows enough of its demand, a source's surplus is what lies above its learnt order-up-to,
and the request's reason says where the points came from.
"""

from __future__ import annotations

from .context import Ctx
from .geo import haversine_km
from .smart_replenishment import SmartRule, points
from .transfers import TransferTerms, open_transfer


def check_reorder_point(ctx: Ctx, node: str, terms: TransferTerms,
                        smart: SmartRule | None = None) -> None:
    pos = ctx.book.positions.get(node)
    if pos is None or pos.reorder_point is None or not pos.reported:
        return  # a node whose stock was never reported has nothing to judge yet
    reorder_point, order_up_to, why = pos.reorder_point, pos.order_up_to, None
    if smart is not None:
        learnt = points(pos, ctx.clock_ms, smart)
        if learnt is not None:
            reorder_point, order_up_to, why = learnt
    # On the ledger's count: a count held back by the snapshot guard orders nothing until it
    # is approved (then it is the ledger's).
    atp = pos.atp(ctx.until_ms)
    if atp >= reorder_point:
        pos.replenishing = False
        return
    if pos.replenishing:
        return
    pos.replenishing = True
    target = order_up_to if order_up_to is not None else 2 * reorder_point
    qty = max(1, target - atp)
    source = _transfer_source(ctx, node, qty, smart)
    reason = f"atp {atp} below reorder point {reorder_point}"
    if why is not None:  # says why this quantity: up to order_up_to, and where that came from
        reason += f", up to {target} ({why})"
    if source is None:
        ctx.emit.replenish(ctx.sku, node, qty, None, reason)
    else:
        open_transfer(ctx, source, node, qty, reason, terms)
    ctx.emit.alert("low_stock", ctx.sku, reason, node)


def _transfer_source(ctx: Ctx, node: str, qty: int, smart: SmartRule | None) -> str | None:
    """The nearest active node with `qty` units of surplus: ATP above its own reorder point
    (smart: above its learnt order-up-to, so that a transfer does not send it below what it
    would order up to itself)."""
    here = ctx.catalog.nodes.get(node)
    if here is None:
        return None
    best: tuple | None = None
    kept_out = ctx.book.kept_out()  # a node whose lower count is held back has no surplus to give
    for other_id, other in ctx.book.positions.items():
        other_node = ctx.catalog.nodes.get(other_id)
        if other_id == node or other_node is None or not other_node.active:
            continue
        kept = kept_out.get(other_id, 0)
        surplus = other.atp(ctx.until_ms) - kept - _keeps(other, ctx, smart)
        # a transfer ships now: its units must be on the source's shelf, free
        if surplus < qty or other.gives_now(kept) < qty:
            continue
        key = (haversine_km(here.lat, here.lon, other_node.lat, other_node.lon), -surplus, other_id)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


def _keeps(pos, ctx: Ctx, smart: SmartRule | None) -> int:
    """What a source keeps for itself before it gives any to a transfer."""
    if smart is not None:
        learnt = points(pos, ctx.clock_ms, smart)
        if learnt is not None:
            return learnt.order_up_to
    return pos.reorder_point or 0
