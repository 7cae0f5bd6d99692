"""Sweeps: the rules that time alone moves catch up with the clock, event or no event.

Some of a SKU's state changes with time and nothing else: a transfer passes its deadline
unshipped (`transfers.py`), a channel's WOS protection and a region's reserve shrink from one
day to the next (`wos.py`, `regional_reserve.py`), a new day is due its slow-mover and
rebalancing judgments (`slow_movers.py`, `rebalancing.py`). Any event on the SKU first catches
it up (`_catch_up`). A SKU no event touches is caught up by a sweep: each time the clock
crosses a multiple of `EngineConfig.sweep_interval_s`, the router sends every bucket a
`Sweep`, caused by the event (or `clock.tick`) that moved the clock, and the bucket visits only
its SKUs with such state:
- at every sweep, those with a transfer past its deadline unshipped (it expires, with its
  alert and releases) or whose units in transit came within the inbound horizon (they are
  sellable at the destination now): availability is republished;
- on a new day (the interval divides a day, so each day begins with a sweep), also those
  protected for a channel, or for a region with lines queued: protection is worked out again,
  availability republished if it moved, and backorders it freed filled; those due their
  rebalancing judgment; and those selling, judged as slow movers (nothing else of theirs is
  looked at).

Which SKUs have transfers open the bucket knows already (`transfer_skus`); the others are kept
the same way (`daily_skus`), noted at each batch's end, so a sweep costs nothing in a bucket
with none. A sweep is one item in the merged input's order like any other: live, replay and a
restore decide alike, whatever the number of buckets.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .backorders import fill_backorders
from .context import Ctx
from .slow_movers import day_of, judge
from .wos import DAY_MS, forget_idle

if TYPE_CHECKING:
    from .book import SkuBook
    from .config import EngineConfig
    from .emit import Emitter
    from .master import Catalog
    from .rebalancing import RebalanceRule
    from .slow_movers import SlowMoverRule


class Sweep(msgspec.Struct, frozen=True, array_like=True):
    """The clock crossed a sweep boundary (`new_day`: the start of a day among them)."""

    new_day: bool


def sweep_at(swept_ms: int, clock_ms: int, interval_ms: int) -> tuple[int, Sweep | None]:
    """The router's question when the clock moves to `clock_ms`, `swept_ms` being the boundary
    of the last sweep sent: returns (the boundary now swept, the sweep to send or None)."""
    boundary = clock_ms - clock_ms % interval_ms
    if boundary <= swept_ms:
        return swept_ms, None
    return boundary, Sweep(new_day=boundary // DAY_MS > swept_ms // DAY_MS)


class Sweeping:
    """A `Ledger` is one: it has the books, the rules' settings, `_ctx` (which catches a SKU
    up through `_catch_up`), `_transfers_before` (transfer_handling.py), `transfer_skus` and
    `_touched` (the SKUs the batch touched so far)."""

    books: dict[str, SkuBook]
    catalog: Catalog
    config: EngineConfig
    emit: Emitter
    horizon_ms: int
    slow_movers: SlowMoverRule | None
    rebalancing: RebalanceRule | None
    transfer_skus: set[str]
    daily_skus: set[str]  # SKUs with state a new day changes, as of the last batch's end
    _touched: dict

    def _catch_up(self, ctx: Ctx) -> None:
        """Before anything touches the SKU: a new day's slow-mover judgment (on the stock it
        had before), inbound come due (filling backorders first), late transfers expired and
        a new day's rebalancing judged."""
        book, clock_ms = ctx.book, ctx.clock_ms
        sales = book.sales
        if sales is not None and sales.day < day_of(clock_ms) and self.slow_movers is not None:
            judge(ctx, day_of(clock_ms), self.slow_movers)
        became_due = False
        for pos in book.positions.values():
            became_due |= pos.advance(ctx.until_ms)
        if self.catalog.supply_policies and book.backorders:  # channels' own horizons too
            for pos in book.positions.values():
                if pos.inbound is not None and pos.inbound.windows:
                    became_due |= pos.inbound.advance_windows(clock_ms)
        if became_due and book.backorders:
            fill_backorders(ctx)  # queued lines come before whatever this event brings
        if book.transfers is not None or book.demand is not None:
            self._transfers_before(ctx)  # late ones expire; a new day's rebalancing
            ctx.changed()

    def _sweep(self, cmd: Sweep, clock_ms: int, seq: int, skus) -> None:
        """Catch up every SKU of the bucket that time alone changed since its last event."""
        candidates = self.transfer_skus.union(self._touched)  # the batch's: not noted yet
        if cmd.new_day:
            candidates |= self.daily_skus
        today = day_of(clock_ms)
        for sku in sorted(candidates):  # sorted: a set's order differs between processes
            book = self.books.get(sku)
            if book is None:
                continue
            moves = cmd.new_day and self._new_day_moves(book)
            if moves and book.wos is not None:  # dropped, they still protected yesterday
                forget_idle(book, self.catalog, clock_ms)  # as a new order would
            if moves or _transfer_due(book, clock_ms, clock_ms + self.horizon_ms):
                ctx = self._ctx(sku, clock_ms)  # catches up, and republishes
                if cmd.new_day and book.backorders:
                    fill_backorders(ctx)  # what a shrunk protection or reserve frees
            elif (cmd.new_day and book.sales is not None and book.sales.day < today
                  and self.slow_movers is not None):
                ctx = Ctx(sku, book, self.catalog, self.emit, clock_ms + self.horizon_ms,
                          clock_ms)
                judge(ctx, today, self.slow_movers)  # nothing else of the SKU moves
                if not _daily(book):  # its ring forgotten: idle (no batch notes it)
                    self.daily_skus.discard(sku)

    def _new_day_moves(self, book: SkuBook) -> bool:
        """Whether a new day may change what the SKU's channels or regions may take (its
        protection, its reserves with lines queued), or is due its rebalancing judgment."""
        return ((book.wos is not None and self.config.wos_protection)
                or (book.regions is not None and bool(book.backorders))
                or book.demand is not None)

    def _note_daily(self, skus) -> None:
        """After a batch: which of the SKUs it touched have state a new day changes."""
        for sku in skus:
            book = self.books.get(sku)
            if book is not None and _daily(book):
                self.daily_skus.add(sku)
            else:
                self.daily_skus.discard(sku)

    def find_daily(self) -> None:
        """Rebuild the SKUs with state a new day changes from the books (after a restore)."""
        self.daily_skus = {sku for sku, book in self.books.items() if _daily(book)}


def _daily(book: SkuBook) -> bool:
    return (book.wos is not None or book.regions is not None or book.sales is not None
            or book.demand is not None)


def _transfer_due(book: SkuBook, clock_ms: int, until_ms: int) -> bool:
    """Whether a transfer of the SKU is past its deadline unshipped, or its units in transit
    came within the horizon (the router brings only announced inbound's ETAs)."""
    if book.transfers is None:
        return False
    for t in book.transfers.values():
        if not t.shipped and t.deadline_ms <= clock_ms:
            return True
        pos = book.positions.get(t.to_node)
        inbound = None if pos is None else pos.inbound
        if inbound is not None and inbound.next_eta is not None and inbound.next_eta <= until_ms:
            return True
    return False
