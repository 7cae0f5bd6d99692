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

from .inbound import entry_changes
from .wos import DAY_MS, NOTHING, Shares, atp_by_node, next_supplies, pool_at, protected_units
from .wos import shares as spread_shares

if TYPE_CHECKING:
    from .book import SkuBook
    from .master import Catalog


class WosMemo:
    """The last protected units and shares of one SKU, and each channel's `against` them.
    What it gives is shared: read it, never change it."""

    __slots__ = ("_units_key", "_units", "_shares_key", "shares", "_against", "_summed",
                 "_next_key", "_next_at", "engine_atp", "_spreads")

    def __init__(self) -> None:
        self._units_key: tuple | None = None
        self._units: dict[str, int] = {}
        self._shares_key: tuple | None = None
        self.shares: Shares | None = None  # the last shares given
        self._against: dict[str, dict[str, int]] = {}  # channel -> against(shares, channel)
        self._summed: dict[str, int] | None = None  # node -> every channel's share there
        self._next_key: tuple | None = None  # (book, pool, inbound.entry_changes()) of `_next_at`
        self._next_at: dict[str, int] = {}  # wos.next_supplies, kept
        self.engine_atp: dict[str, int] | None = None  # wos.atp_by_node the last shares saw
        self._spreads: dict = {}  # what `wos.shares` keeps of each channel's spread (`last`)

    def units(self, book: SkuBook, catalog: Catalog, until_ms: int,
              clock_ms: int) -> dict[str, int]:
        """`wos.protected_units`, given again while the day, the master data, the channels'
        rates and the next inbound at every node are what they were."""
        pool_ms = pool_at(until_ms, clock_ms)
        next_at = self._next_supplies(book, pool_ms)
        rates = [(channel, record.rate, record.at_ms)
                 for channel, record in (book.wos or {}).items()]
        key = (catalog.version, clock_ms - clock_ms % DAY_MS, pool_ms, rates, next_at)
        if key != self._units_key:
            self._units = protected_units(book, catalog, until_ms, clock_ms, next_at)
            self._units_key = key
        return self._units

    def _next_supplies(self, book: SkuBook, pool_ms: int) -> dict[str, int]:
        """`wos.next_supplies`, given again while no inbound entry anywhere changed: most
        events of a SKU are orders, and its inbound is what walks the most to find."""
        key = self._next_key
        if (key is None or key[0] is not book or key[1] != pool_ms
                or key[2] != entry_changes()):
            self._next_at = next_supplies(book, pool_ms)
            self._next_key = (book, pool_ms, entry_changes())
        return self._next_at

    def spread(self, book: SkuBook, catalog: Catalog, until_ms: int, clock_ms: int,
               units: dict[str, int]) -> Shares:
        """`wos.shares` of `units`, given again while the master data and the ATP at every
        node are what they were. (A channel with a supply policy sees ATP of its own, not
        kept here: then it is worked out each time.)"""
        if catalog.supply_policies:
            self.engine_atp = None
            return self._keep(None, spread_shares(book, catalog, until_ms, clock_ms, units,
                                                  last=self._spreads))
        engine_atp = self.engine_atp = atp_by_node(book, until_ms)
        key = (catalog.version, units, engine_atp)
        if key != self._shares_key or self.shares is None:
            self._keep(key, spread_shares(book, catalog, until_ms, clock_ms, units, engine_atp,
                                          self._spreads))
        return self.shares

    def _keep(self, key: tuple | None, shares: Shares) -> Shares:
        self._shares_key = key
        self.shares = shares
        self._against = {}
        self._summed = None
        return shares

    def against(self, channel_id: str) -> dict[str, int]:
        """`wos.against` the last shares given, for the channel."""
        guard = self._against.get(channel_id)
        if guard is None:
            guard = self._against[channel_id] = self._others(channel_id)
        return guard

    def _others(self, channel_id: str) -> dict[str, int]:
        """What `wos.against` gives, from the shares summed once for every channel: a
        publication asks it of each. (A node only the channel protects says 0, not nothing.)"""
        shares = self.shares
        if not shares or (len(shares) == 1 and channel_id in shares):
            return NOTHING
        summed = self._summed
        if summed is None:
            summed = self._summed = {}
            for by_node in shares.values():
                for node, units in by_node.items():
                    summed[node] = summed.get(node, 0) + units
        own = shares.get(channel_id)
        if own is None:
            return summed  # shared, read only as every result here
        guard = summed.copy()
        for node, units in own.items():
            guard[node] -= units
        return guard
