"""Shortage: supply at a node fell below what is committed there.

The engine says so (alert `shortage`) and takes units back until the node is no longer
over-committed: transfers not yet shipped out of it first (`transfers.py`: moving stock
matters less than an order), then holds before allocations, newest orders first, so the
oldest promises are the last to break. Each line it takes units from is re-sourced at other nodes; a line that cannot
be re-sourced gives back everything and is backordered (if its channel takes backorders) or
rejected.
"""

from __future__ import annotations

from .context import Ctx
from .lines import ALLOCATED, HELD, Line
from .placement import add_parts, queue_or_reject, release_all
from .sourcing import source_line
from .transfers import take_back_transfers


def resolve_shortage(ctx: Ctx, node: str) -> int:
    """Bring `node` back within its supply; returns the units that were over-committed."""
    pos = ctx.book.positions[node]
    over = pos.over_committed
    if over <= 0:
        return 0
    ctx.emit.alert(
        "shortage", ctx.sku,
        f"committed {pos.committed} > supply {pos.supply} (on hand {pos.on_hand}, "
        f"inbound {pos.inbound_qty}): {over} units over",
        node,
    )
    short = over - take_back_transfers(ctx, node, over)
    for line in _victims(ctx, node):
        if short <= 0:
            break
        short -= _take_back(ctx, line, node, short)
    return over


def _victims(ctx: Ctx, node: str) -> list[Line]:
    holds, allocations = [], []
    for lines in ctx.book.lines.values():
        for line in lines.values():
            if node in line.parts:
                (holds if line.status == HELD else allocations).append(line)
    holds.sort(key=lambda l: l.seq, reverse=True)
    allocations.sort(key=lambda l: l.seq, reverse=True)
    return holds + allocations


def _take_back(ctx: Ctx, line: Line, node: str, short: int) -> int:
    """Move (part of) the line's units at `node` elsewhere; returns the units given back."""
    book = ctx.book
    channel = ctx.catalog.channels.get(line.channel)
    splittable = channel is not None and channel.allow_split and line.fulfillment == "ship"
    here = line.parts[node]
    qty = min(here, short) if splittable else here
    book.uncommit(line, node, qty)  # as if given back, to look for the units elsewhere
    want = qty if splittable else line.qty - line.committed  # a line that may not split moves whole
    parts = source_line(line, want, book, ctx.catalog, ctx.until_ms, exclude=node,
                        rank=ctx.rank, view=ctx.view(line.channel),
                        protected=ctx.guard(line))
    if not splittable and line.parts:
        parts = None  # a line that may not split moves whole or not at all
    if ctx.explain is not None:
        ctx.explain.sourced(ctx, line, want, node, parts, "moved_by_shortage")
    if parts is not None:
        if line.status == ALLOCATED:
            ctx.emit.release(line, ctx.sku, node, qty, "shortage")
        add_parts(ctx, line, parts, "moved_by_shortage")
    else:
        book.commit(line, node, qty)
        release_all(ctx, line, "shortage")
        queue_or_reject(ctx, line, "shortage")
    return qty
