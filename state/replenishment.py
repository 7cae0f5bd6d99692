"""Replenishment: a node whose ATP falls below its reorder point asks for stock, once.

The request tops ATP back up to the policy's `order_up_to` (default twice the reorder point):
a transfer from the nearest node whose surplus (ATP above its own reorder point) covers it,
as what its on hand gives now does (`Position.gives_now`: a transfer ships now, from the
shelf), reserved there and counted in transit here (`transfers.py`); else a purchase. No
repeat while that request is open; it closes when ATP is back at or above the reorder point.
"""

from __future__ import annotations

from .context import Ctx
from .geo import haversine_km
from .transfers import TransferTerms, open_transfer


def check_reorder_point(ctx: Ctx, node: str, terms: TransferTerms) -> None:
    pos = ctx.book.positions.get(node)
    if pos is None or pos.reorder_point is None or not pos.reported:
        return  # a node whose stock was never reported has nothing to judge yet
    # On the ledger's count: a count held back by the snapshot guard orders nothing until it
    # is approved (then it is the ledger's).
    atp = pos.atp(ctx.until_ms)
    if atp >= pos.reorder_point:
        pos.replenishing = False
        return
    if pos.replenishing:
        return
    pos.replenishing = True
    target = pos.order_up_to if pos.order_up_to is not None else 2 * pos.reorder_point
    qty = max(1, target - atp)
    source = _transfer_source(ctx, node, qty)
    reason = f"atp {atp} below reorder point {pos.reorder_point}"
    if source is None:
        ctx.emit.replenish(ctx.sku, node, qty, None, reason)
    else:
        open_transfer(ctx, source, node, qty, reason, terms)
    ctx.emit.alert("low_stock", ctx.sku, reason, node)


def _transfer_source(ctx: Ctx, node: str, qty: int) -> str | None:
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
        surplus = other.atp(ctx.until_ms) - kept - (other.reorder_point or 0)
        # a transfer ships now: its units must be on the source's shelf, free
        if surplus < qty or other.gives_now(kept) < qty:
            continue
        key = (haversine_km(here.lat, here.lon, other_node.lat, other_node.lon), -surplus, other_id)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]
