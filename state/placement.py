"""Placing an order line: source it, then hold it (unpaid) or allocate it (paid).

A line that cannot be filled is queued when its channel takes backorders, else rejected.
"""

from __future__ import annotations

from .context import Ctx
from .lines import ALLOCATED, BACKORDERED, HELD, REJECTED, Line
from .sourcing import Parts, may_split, sellable, source_line, why_unfilled
from .supply_policy import SupplyView, promise_date
from .wos import note_taken, ran_out


def place(ctx: Ctx, line: Line, exclude: str | None = None, reason: str | None = None) -> bool:
    """Try to fill the whole line; on success commit it and emit its commands and status.

    `reason`: what its statuses say when this is not the line's first placement
    (backorder_filled, revived_by_payment).
    """
    view = ctx.view(line.channel) if ctx.catalog.supply_policies else None
    parts = source_whole(ctx, line, exclude, view)
    if ctx.explain is not None:
        ctx.explain.sourced(ctx, line, line.qty, exclude, parts, reason)
    if parts is None:
        return False
    if not ctx.protect and ctx.book.wos is not None:  # measured: what protection would keep
        note_taken(ctx, line.channel, parts, ctx.protection())
    line.status = ALLOCATED if line.paid else HELD
    add_parts(ctx, line, parts, reason)
    return True


def source_whole(ctx: Ctx, line: Line, exclude: str | None,
                 view: SupplyView | None) -> Parts | None:
    """`source_line` for the whole line, net of its guard (what other channels' weeks of supply
    and other regions keep), which is dear to work out (a spread of every protecting channel
    over its nodes) and only takes units away. So where the line goes to the best node that
    fills it whole, and that node fills it even if the guard kept there all it could
    (`guard_bound`), that is the answer with the guard too, and the guard is not worked out."""
    book, catalog = ctx.book, ctx.catalog
    bound = ctx.guard_bound(line)
    if bound == 0:
        return source_line(line, line.qty, book, catalog, ctx.until_ms, exclude, ctx.rank, view)
    channel = catalog.channels.get(line.channel)
    best_whole_first = ctx.rank[0] == "whole_line" or (
        channel is not None and not may_split(channel, line))
    if bound is not None and best_whole_first:
        free = source_line(line, line.qty, book, catalog, ctx.until_ms, exclude, ctx.rank, view)
        if free is None:
            return None  # fewer units will not fill it either
        if len(free) == 1:
            node = free[0][0]
            left = sellable(book.positions[node], ctx.until_ms, view) - book.kept_out().get(node, 0)
            if left - bound >= line.qty:
                return free
    return source_line(line, line.qty, book, catalog, ctx.until_ms, exclude, ctx.rank, view,
                       ctx.guard(line))


def add_parts(ctx: Ctx, line: Line, parts: Parts, reason: str | None = None) -> None:
    """Commit more units of a held or allocated line, and tell the world. Units that what on
    hand gives now (`Position.gives_now`) does not cover are promised for the ETA of the
    inbound that does (`line.promised`)."""
    book = ctx.book
    kept_out = book.kept_out()
    for node, qty in parts:
        pos = book.position(node)
        kept = kept_out.get(node, 0) if kept_out else 0
        if qty > pos.gives_now(kept) or line.promised is not None:
            book.promise(line, node, promise_date(pos, qty, ctx.until_ms,
                                                  ctx.view(line.channel), kept))
        book.commit(line, node, qty)
    if line.status == ALLOCATED:
        for node, qty in parts:
            ctx.emit.allocate(line, ctx.sku, node, qty)
            ctx.emit.status(line, ctx.sku, ALLOCATED, qty, node, reason)
    else:
        emit_holds(ctx, line, reason)


def emit_holds(ctx: Ctx, line: Line, reason: str | None = None) -> None:
    """The line's holds changed: once this input event is done, a `held` status goes out for
    every node it is then held at, and none for a node it left (that hold is released)."""
    ctx.emit.holds(line, ctx.sku, reason)


def place_or_queue(ctx: Ctx, line: Line, reason: str | None = None) -> None:
    if not place(ctx, line, reason=reason):
        queue_or_reject(ctx, line, unfilled(ctx, line))


def unfilled(ctx: Ctx, line: Line) -> str:
    """Why the whole line could not be placed (`sourcing.why_unfilled`), for its status."""
    return why_unfilled(line, ctx.book, ctx.catalog, ctx.until_ms, view=ctx.view(line.channel),
                        protected=ctx.guard(line))


def queue_or_reject(ctx: Ctx, line: Line, reason: str) -> None:
    """A line without stock: the backorder queue if its channel takes backorders."""
    if reason in ("no_stock", "split_not_allowed"):
        ran_out(ctx, line.channel)
    channel = ctx.catalog.channels.get(line.channel)
    if channel is not None and channel.backorder and reason != "no_eligible_node":
        line.status = BACKORDERED
        ctx.book.enqueue(line)
        ctx.emit.status(line, ctx.sku, BACKORDERED, line.qty, reason=reason)
    else:
        line.status = REJECTED
        ctx.emit.status(line, ctx.sku, REJECTED, line.qty, reason=reason)


def release_all(ctx: Ctx, line: Line, reason: str) -> None:
    """Give back every unit the line holds or has allocated (a release per allocation)."""
    allocated = line.status == ALLOCATED
    for node, qty in list(line.parts.items()):
        ctx.book.uncommit(line, node, qty)
        if allocated:
            ctx.emit.release(line, ctx.sku, node, qty, reason)
    ctx.supply_rose = True
