"""Channel availability: what each channel may sell of a SKU, in all and in one order line.

A channel pools the ATP of the active nodes that serve it (the 'virtual total warehouse');
a node's debt or shortage counts as nothing there, never as less than nothing, so it does not
lower what the other nodes can sell. One order line of a channel that does not split lines
must come from one node, so the most it can be promised is the largest ATP at one node a ship
line could be sourced from. Availability is a state: computed once per SKU per batch, emitted
only when it differs from the last value published.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from .book import SkuBook
from .emit import Emitter
from .master import Catalog
from .supply_policy import SupplyView, channel_atp
from .wos_memo import WosMemo


class Availability(NamedTuple):
    available: int  # the channel's nodes pooled
    max_line_qty: int  # the most one order line can be promised


def channel_availability(
    book: SkuBook, catalog: Catalog, channel: str, until_ms: int,
    view: SupplyView | None = None, protected: dict[str, int] | None = None,
    engine_atp: dict[str, int] | None = None,
) -> Availability:
    """`view`: what the channel counts of inbound supply (None: all due by `until_ms`);
    `protected`: node -> units kept there for other channels' weeks of supply (wos.py);
    `engine_atp`: node -> ATP in the engine's view, as far as other channels asked already
    (filled in here: ATP is asked of a node only when a channel it serves wants it)."""
    members = catalog.channel_nodes(channel)
    shippers = catalog.channel_ship_nodes(channel)
    total = largest = 0
    kept_out = book.kept_out()  # what a held-back lower count says is not there
    if engine_atp is None:
        engine_atp = {}
    for node, pos in book.positions.items():
        if node in members:
            if view is not None:
                atp = channel_atp(pos, until_ms, view) - kept_out.get(node, 0)
            else:
                atp = engine_atp.get(node)
                if atp is None:
                    atp = engine_atp[node] = pos.atp(until_ms) - kept_out.get(node, 0)
            if protected:
                atp -= protected.get(node, 0)
            if atp > 0:
                total += atp
                if atp > largest and node in shippers:
                    largest = atp
    splits = catalog.channels[channel].allow_split
    return Availability(total, total if splits else largest)


def publish_changes(
    sku: str, book: SkuBook, catalog: Catalog, until_ms: int,
    emit: Emitter, cause: str, ts: datetime, whole: bool = False, clock_ms: int | None = None,
    protect: bool = True, wos_memo: WosMemo | None = None,
) -> None:
    """Emit `availability.changed` for every channel whose availability of `sku` moved, in all
    or in one line; `whole`: for every channel. Each channel counts inbound supply by its own
    policy at `clock_ms` (the engine's clock; `until_ms` is its horizon), and without the
    units protected for other channels (`protect`: WOS protection binds; `wos_memo`: the
    SKU's protection as last worked out)."""
    published, published_line = book.published, book.published_line
    horizon_ms = 0 if clock_ms is None else until_ms - clock_ms
    protection = None
    engine_atp: dict[str, int] = {}  # asked once a node, for every channel without a policy
    if protect and book.wos is not None:
        memo = WosMemo() if wos_memo is None else wos_memo
        units = memo.units(book, catalog, until_ms, until_ms - horizon_ms)
        if units:
            protection = memo.spread(book, catalog, until_ms, until_ms - horizon_ms, units)
            if memo.engine_atp is not None:  # the nodes above 0, asked already: a copy
                engine_atp = dict(memo.engine_atp)
    for channel, master in catalog.channels.items():
        view = None if master.supply is None else catalog.supply_view(channel, horizon_ms)
        protected = memo.against(channel) if protection else None
        available, max_line_qty = channel_availability(book, catalog, channel, until_ms, view,
                                                       protected, engine_atp)
        if (whole or published.get(channel, 0) != available
                or published_line.get(channel, 0) != max_line_qty):
            published[channel] = available
            published_line[channel] = max_line_qty
            emit.availability(sku, channel, available, max_line_qty, cause, ts)
