"""What a rule needs while one event is applied to one SKU."""

from __future__ import annotations

from .book import SkuBook
from .emit import Emitter
from .master import Catalog


class Ctx:
    """One SKU's book, the master data, the outputs being built, and the ATP horizon."""

    __slots__ = ("sku", "book", "catalog", "emit", "until_ms", "clock_ms", "supply_rose")

    def __init__(self, sku: str, book: SkuBook, catalog: Catalog, emit: Emitter, until_ms: int,
                 clock_ms: int = 0):
        self.sku = sku
        self.book = book
        self.catalog = catalog
        self.emit = emit
        self.until_ms = until_ms  # inbound supply due by then counts as sellable
        self.clock_ms = clock_ms  # the engine's clock (event time)
        self.supply_rose = False  # units came free: the backorder queue may be filled
