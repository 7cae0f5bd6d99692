"""What happens to a line after it is placed: cancellation, shipment, return, and being
forgotten once its order leaves the retention window."""

from __future__ import annotations

from .book import SkuBook
from .context import Ctx
from .lines import ALLOCATED, BACKORDERED, CANCELLABLE, CANCELLED, HELD, RETURNED, SHIPPED, Line
from .placement import release_all


def cancel_line(ctx: Ctx, line: Line) -> None:
    """Cancel what is not shipped: holds and allocations are released, the queue left."""
    if line.status not in CANCELLABLE:
        return
    remaining = line.qty - line.shipped
    if line.status in (HELD, ALLOCATED):
        remaining = line.committed
        release_all(ctx, line, "cancelled")
    elif line.status == BACKORDERED:
        ctx.book.dequeue(line)
    line.status = CANCELLED
    ctx.emit.status(line, ctx.sku, CANCELLED, remaining, reason="order_cancelled")


def ship_line(ctx: Ctx, line: Line | None, node: str, qty: int) -> int:
    """The WMS shipped `qty` at `node`: the line's allocation there goes down.

    Returns the allocated units the shipment consumed (on hand drops by all of `qty`).
    """
    consumed = 0
    if line is not None and line.status == ALLOCATED and node in line.parts:
        consumed = min(qty, line.parts[node])
        ctx.book.uncommit(line, node, consumed)
        line.shipped += qty
        if not line.parts:
            line.status = SHIPPED
    return consumed


def return_line(line: Line | None) -> None:
    if line is not None and line.status in (SHIPPED, ALLOCATED) and not line.parts:
        line.status = RETURNED


def forget_lines(book: SkuBook, order_id: str) -> None:
    """The order left the retention window: drop its lines that hold and queue nothing."""
    lines = book.lines.get(order_id)
    if not lines:
        return
    for line_id, line in list(lines.items()):
        if not line.parts and line.status != BACKORDERED:
            del lines[line_id]
    if not lines:
        del book.lines[order_id]
