"""What a rule needs while one event is applied to one SKU."""

from __future__ import annotations

from typing import Protocol

from .book import SkuBook
from .config import DEFAULT_RANK
from .emit import Emitter
from .lines import Line
from .master import Catalog
from .regional_reserve import Reserves, reserves
from .supply_policy import SupplyView
from .wos import NOTHING, Shares, against
from .wos_memo import WosMemo


class SourcingObserver(Protocol):
    """Sees every sourcing decision as it is made (explain.py); None on the engine's own runs."""

    def sourced(self, ctx: "Ctx", line: Line, qty: int, exclude: str | None,
                parts: list[tuple[str, int]] | None, reason: str | None) -> None:
        """`source_line` chose `parts` (None: not filled) for `qty` units of the line, the
        book still as it saw it; `reason` is what the statuses it leads to will say."""


class Ctx:
    """One SKU's book, the master data, the outputs being built, and the ATP horizon."""

    __slots__ = ("sku", "book", "catalog", "emit", "until_ms", "clock_ms", "supply_rose", "rank",
                 "explain", "protect", "reserve_weeks", "_wos_memo", "_protected_units", "_stock",
                 "_shares", "_reserves", "_guards", "moved")

    def __init__(self, sku: str, book: SkuBook, catalog: Catalog, emit: Emitter, until_ms: int,
                 clock_ms: int | None = None, rank: tuple[str, ...] = DEFAULT_RANK,
                 explain: SourcingObserver | None = None, protect: bool = True,
                 reserve_weeks: float | None = None, wos_memo: WosMemo | None = None):
        self.sku = sku
        self.book = book
        self.catalog = catalog
        self.emit = emit
        self.until_ms = until_ms  # inbound supply due by then counts as sellable
        self.supply_rose = False  # units came free: the backorder queue may be filled
        self.rank = rank  # sourcing's order of preference (EngineConfig.sourcing_rank)
        self.explain = explain  # set only by `stockflow explain`
        self.clock_ms = until_ms if clock_ms is None else clock_ms  # the engine's clock
        self.protect = protect  # channels' WOS protection binds (EngineConfig.wos_protection)
        self._wos_memo = wos_memo  # the SKU's protection, kept from event to event
        self._protected_units: dict[str, int] | None = None  # the memo's, for this event
        self._stock: list | None = None  # the stock `_shares` were asked for
        self._shares: Shares | None = None
        self.reserve_weeks = reserve_weeks  # EngineConfig.regional_reserve_weeks
        self._reserves: Reserves | None = None  # regional_reserve.reserves, kept
        self._guards: dict[str, dict[str, int]] = {}  # region -> other regions' reserves
        # Nodes whose on hand, inbound, transfer reserves or kept-out units move under this
        # event, with what their promise dates rested on before (`Position.promise_ground`):
        # looked at again where that changed (promises.py). None: none moved.
        self.moved: dict[str, tuple | None] | None = None

    def moved_at(self, node: str) -> None:
        """On hand, inbound, a transfer reserve or a held-back count is about to move at
        `node` (called before the change)."""
        moved = self.moved
        if moved is None:
            moved = self.moved = {}
        if node not in moved:
            pos = self.book.positions.get(node)
            moved[node] = None if pos is None else pos.promise_ground(
                self.book.kept_out().get(node, 0))

    def view(self, channel_id: str) -> SupplyView | None:
        """What the channel counts of inbound supply now (None: the engine's view)."""
        if not self.catalog.supply_policies:
            return None  # the usual case, at the cost of one attribute
        return self.catalog.supply_view(channel_id, self.until_ms - self.clock_ms)

    @property
    def wos_memo(self) -> WosMemo:
        """The SKU's protection as last worked out (wos_memo.py): the ledger's, kept from
        event to event, or one of this event's own."""
        if self._wos_memo is None:
            self._wos_memo = WosMemo()
        return self._wos_memo

    def protected_units(self) -> dict[str, int]:
        """channel -> units protected for it (wos.py), the same all through one event but
        for what `changed` says."""
        units = self._protected_units
        if units is None:
            units = self._protected_units = self.wos_memo.units(
                self.book, self.catalog, self.until_ms, self.clock_ms)
        return units

    def protection(self) -> Shares:
        """Units protected for each channel with `wos_weeks`, per node, now (wos.py)."""
        if self.book.wos is None:
            return {}
        units = self.protected_units()
        if not units:
            return {}
        # A backorder walk asks again and again of unchanged stock: look once per state.
        stock = [(p.on_hand, p.held, p.allocated, p.transfer_out, p.safety_stock)
                 for p in self.book.positions.values()]
        if self._stock == stock and self._shares is self.wos_memo.shares is not None:
            return self._shares
        spread = self.wos_memo.spread(self.book, self.catalog, self.until_ms, self.clock_ms,
                                      units)
        self._stock, self._shares = stock, spread
        return spread

    def changed(self) -> None:
        """Demand, supply or a held-back count changed: protection is looked up again."""
        self._protected_units = None
        self._shares = None
        self._reserves = None
        self._guards = {}

    def guard(self, line: Line) -> dict[str, int]:
        """node -> units the line may not take there: what other channels' weeks of supply
        protect (`protected`) and what other regions keep for their own customers
        (regional_reserve.py)."""
        channel_guard = self.protected(line.channel)
        if self.reserve_weeks is None or self.book.regions is None:
            return channel_guard
        region_guard = self._guards.get(line.region)
        if region_guard is None:
            kept = self._reserves
            if kept is None:
                kept = self._reserves = reserves(self.book, self.catalog, self.reserve_weeks,
                                                 self.until_ms, self.clock_ms)
            # what other regions keep for their own customers
            region_guard = self._guards[line.region] = against(kept, line.region)
        if not channel_guard:
            return region_guard
        if not region_guard:
            return channel_guard
        guard = dict(channel_guard)
        for node, units in region_guard.items():
            guard[node] = guard.get(node, 0) + units
        return guard

    def guard_bound(self, line: Line) -> int | None:
        """The most `guard(line)` can keep at any one node, without spreading anything: every
        unit other channels' weeks of supply protect (a channel's share at a node is part of
        its units). None while regional reserves count too: not bounded here."""
        if self.reserve_weeks is not None and self.book.regions is not None:
            return None
        if not self.protect or self.book.wos is None:
            return 0
        return sum(units for channel_id, units in self.protected_units().items()
                   if channel_id != line.channel)

    def protected(self, channel_id: str) -> dict[str, int]:
        """node -> units protected there for other channels, which `channel_id` may not take
        (nothing while protection is off)."""
        if not self.protect or self.book.wos is None:
            return NOTHING
        units = self.protected_units()
        if not units or (len(units) == 1 and channel_id in units):
            return NOTHING  # only its own: nothing to spread
        self.protection()
        return self.wos_memo.against(channel_id)
