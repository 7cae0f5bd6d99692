"""Backorders: lines accepted without stock, filled first-come first-served when units free up.

Queued lines are walked in input order across all queues of the SKU; each line that can be
filled now is filled. A line that cannot waits without blocking later lines it does not
compete with (another channel's nodes, a smaller quantity). Units only get scarcer during a
walk, so once a shape (channel, fulfillment, pickup node) fails at some quantity, its later
lines of that quantity or more are skipped, and a shape that fails at one unit is done.
"""

from __future__ import annotations

import heapq

from .context import Ctx
from .lines import BACKORDERED
from .placement import place


def fill_backorders(ctx: Ctx) -> None:
    book = ctx.book
    if not book.backorders:
        return
    kept_out = book.kept_out()
    until_ms = ctx.until_ms
    if ctx.catalog.supply_policies:  # a channel may count more than the engine's horizon
        sellable = (pos.atp_counting(pos.inbound_qty) - kept_out.get(node, 0) > 0
                    for node, pos in book.positions.items())
    else:
        sellable = (pos.atp(until_ms) - kept_out.get(node, 0) > 0
                    for node, pos in book.positions.items())
    if not any(sellable):
        return
    failed_at: dict[str, int] = {}  # shape -> smallest quantity that could not be filled
    filled: dict[str, set] = {}
    heads = [(queue[0], shape, 0) for shape, queue in book.backorders.items()]
    heapq.heapify(heads)
    while heads:
        entry, shape, i = heapq.heappop(heads)
        queue = book.backorders[shape]
        _, order_id, line_id = entry
        line = book.line(order_id, line_id)
        if line is None or line.status != BACKORDERED:
            filled.setdefault(shape, set()).add(entry)
        elif line.qty < failed_at.get(shape, line.qty + 1):
            if place(ctx, line, reason="backorder_filled"):
                filled.setdefault(shape, set()).add(entry)
            else:
                failed_at[shape] = line.qty
        if failed_at.get(shape) == 1:
            continue  # nothing left this shape can take
        if i + 1 < len(queue):
            heapq.heappush(heads, (queue[i + 1], shape, i + 1))
    for shape, done in filled.items():
        left = [e for e in book.backorders[shape] if e not in done]
        if left:
            book.backorders[shape] = left
        else:
            del book.backorders[shape]
