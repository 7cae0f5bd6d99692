"""What a rule needs while one event is applied to one SKU."""

from __future__ import annotations

from typing import Protocol

from .book import SkuBook
from .config import DEFAULT_RANK
from .emit import Emitter
from .lines import Line
from .master import Catalog
from .supply_policy import SupplyView


class SourcingObserver(Protocol):
    """Sees every sourcing decision as it is made (explain.py); None on the engine's own runs."""

    def sourced(self, ctx: "Ctx", line: Line, qty: int, exclude: str | None,
                parts: list[tuple[str, int]] | None, reason: str | None) -> None:
        """`source_line` chose `parts` (None: not filled) for `qty` units of the line, the
        book still as it saw it; `reason` is what the statuses it leads to will say."""


class Ctx:
    """One SKU's book, the master data, the outputs being built, and the ATP horizon."""

    __slots__ = ("sku", "book", "catalog", "emit", "until_ms", "clock_ms", "supply_rose", "rank",
                 "explain")

    def __init__(self, sku: str, book: SkuBook, catalog: Catalog, emit: Emitter, until_ms: int,
                 clock_ms: int | None = None, rank: tuple[str, ...] = DEFAULT_RANK,
                 explain: SourcingObserver | None = None):
        self.sku = sku
        self.book = book
        self.catalog = catalog
        self.emit = emit
        self.until_ms = until_ms  # inbound supply due by then counts as sellable
        self.supply_rose = False  # units came free: the backorder queue may be filled
        self.rank = rank  # sourcing's order of preference (EngineConfig.sourcing_rank)
        self.explain = explain  # set only by `stockflow explain`
        self.clock_ms = until_ms if clock_ms is None else clock_ms  # the engine's clock

    def view(self, channel_id: str) -> SupplyView | None:
        """What the channel counts of inbound supply now (None: the engine's view)."""
        if not self.catalog.supply_policies:
            return None  # the usual case, at the cost of one attribute
        return self.catalog.supply_view(channel_id, self.until_ms - self.clock_ms)
