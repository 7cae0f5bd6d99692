"""What a rule needs while one event is applied to one SKU."""

from __future__ import annotations

from .book import SkuBook
from .config import DEFAULT_RANK
from .emit import Emitter
from .master import Catalog


class Ctx:
    """One SKU's book, the master data, the outputs being built, and the ATP horizon."""

    __slots__ = ("sku", "book", "catalog", "emit", "until_ms", "supply_rose", "rank")

    def __init__(self, sku: str, book: SkuBook, catalog: Catalog, emit: Emitter, until_ms: int,
                 rank: tuple[str, ...] = DEFAULT_RANK):
        self.sku = sku
        self.book = book
        self.catalog = catalog
        self.emit = emit
        self.until_ms = until_ms  # inbound supply due by then counts as sellable
        self.supply_rose = False  # units came free: the backorder queue may be filled
        self.rank = rank  # sourcing's order of preference (EngineConfig.sourcing_rank)
