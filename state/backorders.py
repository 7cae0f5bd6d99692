"""Backorders: lines accepted without stock, filled first-come first-served when units free up.

The queue of a SKU is walked in order; each line that can be filled now is filled, one that
cannot waits without blocking later lines it does not compete with (another channel's nodes,
a smaller quantity).
"""

from __future__ import annotations

from .context import Ctx
from .lines import BACKORDERED
from .placement import place


def fill_backorders(ctx: Ctx) -> None:
    book = ctx.book
    if not book.backorders:
        return
    if not any(pos.atp(ctx.until_ms) > 0 for pos in book.positions.values()):
        return
    for entry in list(book.backorders):
        _, order_id, line_id = entry
        line = book.line(order_id, line_id)
        if line is None or line.status != BACKORDERED:
            book.backorders.remove(entry)
            continue
        if place(ctx, line):
            book.backorders.remove(entry)
