"""Regional reserve: a region's stock is kept for its own customers, as WOS keeps a channel's.

A line shipped from outside its customer's region crosses regions wherever it ships from; a
line that takes a region's last units sends that region's next customers across too. So each
region where nodes stand keeps a reserve of the SKU for the customers in it, and a line to
another region may take a region's units only beyond its reserve. The region's own customers
sell from everything, and a region's stock beyond its reserve goes to whoever ranks it first.

Demand: every ship line ordered to a region where an active node stands counts for that
region, per SKU, as an exponentially weighted weekly rate with a `RATE_WEEKS` time constant
(wos.py's learning, with a month's memory: regions are restocked by the month, not the week).

Reserve (`reserves`) = the rate x the weeks until the region's next inbound enters the pool,
at most `EngineConfig.regional_reserve_weeks`: what the region is forecast to sell before new
supply comes; units beyond that would sit, so others may take them (the sharing). Taken at the
start of the clock's day, as WOS protection is, and spread over the region's nodes in
proportion to their ATP, never more than they have. Like WOS protection it only ever lowers
what a line may take, so it never causes an oversell; a line it turns away is rejected or
backordered for `no_stock`.

Kept only while the reserve is on, one small record per SKU and region, dropped once its
rate falls below `FORGET_BELOW`. Channels' published availability does not show it: it binds
per customer region, not per channel.
"""

from __future__ import annotations

from math import floor
from typing import TYPE_CHECKING

from .wos import (
    DAY_MS,
    WEEK_MS,
    ChannelRate,
    atp_by_node,
    next_supplies,
    pool_at,
    rate_at,
    soonest_at,
    spread,
)

if TYPE_CHECKING:
    from .book import SkuBook
    from .lines import Line
    from .master import Catalog

RATE_WEEKS = 4.0  # the demand rate's time constant: about the last month weighs most
FORGET_BELOW = 0.05  # units a week: a region that stopped ordering is forgotten below this

# region -> node -> units kept there for the region's own customers
Reserves = dict[str, dict[str, int]]


def count_demand(book: SkuBook, catalog: Catalog, line: Line, clock_ms: int) -> None:
    """A ship line of the SKU was ordered: its region's rate rises, if nodes stand there."""
    if line.fulfillment != "ship" or not catalog.region_nodes(line.region):
        return
    rates = book.regions
    if rates is None:
        rates = book.regions = {}
    record = rates.get(line.region)
    if record is None:
        record = rates[line.region] = ChannelRate(0.0, clock_ms)
    record.rate = rate_at(record, clock_ms, RATE_WEEKS) + line.qty / RATE_WEEKS
    record.at_ms = max(record.at_ms, clock_ms)
    for region, kept in list(rates.items()):
        if rate_at(kept, clock_ms, RATE_WEEKS) < FORGET_BELOW:
            del rates[region]
    if not rates:
        book.regions = None


def reserves(book: SkuBook, catalog: Catalog, weeks: float, until_ms: int,
             clock_ms: int) -> Reserves:
    """Per region with demand, the units kept for its customers at each of its nodes."""
    out: Reserves = {}
    if book.regions is None:
        return out
    day_ms = clock_ms - clock_ms % DAY_MS
    pool_ms = pool_at(until_ms, clock_ms)  # inbound due by then counts as ATP today
    next_at = next_supplies(book, pool_ms)  # once for every region
    for region, record in sorted(book.regions.items()):
        nodes = catalog.region_nodes(region)
        cover = weeks
        next_ms = soonest_at(next_at, nodes)
        if next_ms is not None:
            cover = min(cover, (next_ms - pool_ms) / WEEK_MS)
        units = floor(rate_at(record, day_ms, RATE_WEEKS) * cover + 1e-9)
        if units <= 0:
            continue
        atp = atp_by_node(book, until_ms, nodes)
        if atp:
            out[region] = spread(min(units, sum(atp.values())), atp)
    return out

