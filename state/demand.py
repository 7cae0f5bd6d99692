"""What a new order line teaches the rules that learn demand from the stream.

A line counts once it is placed: it meets the protection published before it, not one its own
order would change. It counts for its channel's weeks of supply (wos.py), its region's reserve
(regional_reserve.py, while that is on), the slow-mover rule's daily sales (slow_movers.py;
only lines not rejected: what customers were sold to) and rebalancing's demand per home region
(rebalancing.py, while that is on) and, at each node it is placed at, smart replenishment's
daily demand (smart_replenishment.py, while that is on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lines import REJECTED, Line
from .rebalancing import RebalanceRule, count_demand
from .regional_reserve import count_demand as count_region
from .slow_movers import SlowMoverRule, count_sale, day_of
from .smart_replenishment import SmartRule
from .smart_replenishment import count_demand as count_node_demand
from .wos import count_order

if TYPE_CHECKING:
    from .context import Ctx
    from .events import ShipTo


def count_line(ctx: Ctx, line: Line, ship_to: ShipTo, clock_ms: int, *, regional: bool,
               slow_movers: SlowMoverRule | None, rebalancing: RebalanceRule | None,
               smart: SmartRule | None = None) -> None:
    """The placed line's units, counted by every rule that learns from them."""
    count_order(ctx.book, ctx.catalog, line.channel, line.qty, clock_ms)
    if regional:
        count_region(ctx.book, ctx.catalog, line, clock_ms)
    if slow_movers is not None and line.status != REJECTED:
        ctx.book.sales = count_sale(ctx.book.sales, day_of(clock_ms), line.qty, slow_movers)
    if rebalancing is not None:
        count_demand(ctx, ship_to, line.qty, rebalancing)
    if smart is not None:
        for node, qty in line.parts.items():
            pos = ctx.book.positions.get(node)
            if pos is not None and pos.reorder_point is not None:
                count_node_demand(pos, clock_ms, qty, smart)
