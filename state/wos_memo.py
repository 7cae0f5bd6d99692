"""WOS protection of one SKU, kept with the exact inputs it was worked out from.

`wos.protected_units` and `wos.shares` are pure functions of the SKU's book, the master data
and the clock, and most events of a SKU leave their inputs as they were: the same day, rates
and next inbound; the same ATP at every node (an order refused, a payment, the publication
after the event that placed the last line). Each result is kept with its inputs and given
again while they are equal, so the protection is the same, only cheaper. Kept beside the
book, not in it: snapshots do not carry it, and a restarted engine works it out again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .wos import DAY_MS, Shares, against, atp_by_node, next_supplies, pool_at, protected_units
from .wos import shares as spread_shares

if TYPE_CHECKING:
    from .book import SkuBook
    from .master import Catalog


class WosMemo:
    """The last protected units and shares of one SKU, and each channel's `against` them.
    What it gives is shared: read it, never change it."""

    __slots__ = ("_units_key", "_units", "_shares_key", "shares", "_against")

    def __init__(self) -> None:
        self._units_key: tuple | None = None
        self._units: dict[str, int] = {}
        self._shares_key: tuple | None = None
        self.shares: Shares | None = None  # the last shares given
        self._against: dict[str, dict[str, int]] = {}  # channel -> against(shares, channel)

    def units(self, book: SkuBook, catalog: Catalog, until_ms: int,
              clock_ms: int) -> dict[str, int]:
        """`wos.protected_units`, given again while the day, the master data, the channels'
        rates and the next inbound at every node are what they were."""
        pool_ms = pool_at(until_ms, clock_ms)
        next_at = next_supplies(book, pool_ms)
        rates = tuple((channel, record.rate, record.at_ms)
                      for channel, record in (book.wos or {}).items())
        key = (catalog.version, clock_ms - clock_ms % DAY_MS, pool_ms, rates, next_at)
        if key != self._units_key:
            self._units = protected_units(book, catalog, until_ms, clock_ms, next_at)
            self._units_key = key
        return self._units

    def spread(self, book: SkuBook, catalog: Catalog, until_ms: int, clock_ms: int,
               units: dict[str, int]) -> Shares:
        """`wos.shares` of `units`, given again while the master data and the ATP at every
        node are what they were. (A channel with a supply policy sees ATP of its own, not
        kept here: then it is worked out each time.)"""
        if catalog.supply_policies:
            return self._keep(None, spread_shares(book, catalog, until_ms, clock_ms, units))
        engine_atp = atp_by_node(book, until_ms)
        key = (catalog.version, units, engine_atp)
        if key != self._shares_key or self.shares is None:
            self._keep(key, spread_shares(book, catalog, until_ms, clock_ms, units, engine_atp))
        return self.shares

    def _keep(self, key: tuple | None, shares: Shares) -> Shares:
        self._shares_key = key
        self.shares = shares
        self._against = {}
        return shares

    def against(self, channel_id: str) -> dict[str, int]:
        """`wos.against` the last shares given, for the channel."""
        guard = self._against.get(channel_id)
        if guard is None:
            guard = self._against[channel_id] = against(self.shares or {}, channel_id)
        return guard
