"""Channel availability: what each channel may sell of a SKU.

A channel pools the ATP of the active nodes that serve it (the 'virtual total warehouse').
Changes are coalesced: computed once per SKU per batch, emitted only when they differ from the
last value published.
"""

from __future__ import annotations

from datetime import datetime

from .book import SkuBook
from .emit import Emitter
from .master import Catalog


def channel_availability(book: SkuBook, catalog: Catalog, channel: str, until_ms: int) -> int:
    members = catalog.channel_nodes(channel)
    total = 0
    for node, pos in book.positions.items():
        if node in members:
            atp = pos.atp(until_ms)
            if atp > 0:
                total += atp
    return total


def publish_changes(
    sku: str, book: SkuBook, catalog: Catalog, until_ms: int,
    emit: Emitter, cause: str, ts: datetime,
) -> None:
    """Emit `availability.changed` for every channel whose availability of `sku` moved."""
    for channel in catalog.channels:
        available = channel_availability(book, catalog, channel, until_ms)
        if book.published.get(channel, 0) != available:
            book.published[channel] = available
            emit.availability(sku, channel, available, cause, ts)
