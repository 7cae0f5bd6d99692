"""The ledger's side of transfers (`transfers.py`): the WMS's `transfer.shipped` and
`transfer.cancelled`, transfers past their deadline, and the daily rebalancing judgment.

A `transfer.cancelled` names only the command id and reaches every bucket, as snapshot
verdicts do; the bucket whose SKU has that transfer acts. Each bucket knows which of its SKUs
have transfers open, so a cancellation looks at those alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import rebalancing
from .backorders import fill_backorders
from .replenishment import check_reorder_point
from .transfers import TransferTerms, cancel_transfer, expire_transfers, ship_transfer

if TYPE_CHECKING:
    from .book import SkuBook
    from .context import Ctx
    from .events import TransferCancelled, TransferShipped
    from .rebalancing import RebalanceRule
    from .smart_replenishment import SmartRule


class TransferHandling:
    """A `Ledger` is one: it has the `books`, the rules' settings, the `_ctx` / `_after_change` /
    `_change_on_hand` used here, and `_touched` (the SKUs the batch touched so far)."""

    books: dict[str, SkuBook]
    rebalancing: RebalanceRule | None
    transfer_terms: TransferTerms
    smart: SmartRule | None  # smart replenishment's rule; None: the policies' fixed points
    transfer_skus: set[str]  # SKUs with transfers open, as of the last batch's end
    _touched: dict

    def _transfers_before(self, ctx: Ctx) -> None:
        """Before an event or a sweep touches the SKU: transfers past their deadline expire
        (nothing is promised against their units in transit once they are late), and on a new
        day the rebalancing rule is judged."""
        if ctx.book.transfers is not None and expire_transfers(ctx):
            self._after_change(ctx, supply_fell=True)
        if self.rebalancing is not None and rebalancing.due(ctx):
            opened = len(ctx.book.transfers or ())
            rebalancing.judge(ctx, self.rebalancing, self.transfer_terms)
            self._fill_if_opened(ctx, opened)

    def _check_reorder_points(self, ctx: Ctx) -> None:
        """Every node under its reorder point asks for stock (once); what a transfer brings
        within the horizon may fill queued lines at once."""
        opened = len(ctx.book.transfers or ())
        for node, pos in list(ctx.book.positions.items()):
            if pos.reorder_point is not None:
                check_reorder_point(ctx, node, self.transfer_terms, self.smart)
        self._fill_if_opened(ctx, opened)

    def _fill_if_opened(self, ctx: Ctx, before: int) -> None:
        if ctx.book.backorders and len(ctx.book.transfers or ()) > before:
            fill_backorders(ctx)

    def _transfer_shipped(self, ev: TransferShipped, clock_ms: int, seq: int, skus) -> None:
        ctx = self._ctx(ev.sku, clock_ms)
        if ship_transfer(ctx, ev, self.transfer_terms):
            self._change_on_hand(ctx, ev.from_node, -ev.qty)
        self._after_change(ctx, supply_fell=True)

    def _transfer_cancelled(self, ev: TransferCancelled, clock_ms: int, seq: int, skus) -> None:
        for sku in sorted(self.transfer_skus.union(self._touched)):
            book = self.books.get(sku)
            if book is not None and book.transfer(ev.command_id) is not None:
                ctx = self._ctx(sku, clock_ms)
                cancel_transfer(ctx, ev.command_id)
                self._after_change(ctx, supply_fell=True)

    def _note_transfers(self, skus) -> None:
        """After a batch: which of the SKUs it touched have transfers open."""
        for sku in skus:
            book = self.books.get(sku)
            if book is not None and book.transfers is not None:
                self.transfer_skus.add(sku)
            else:
                self.transfer_skus.discard(sku)

    def find_transfers(self) -> None:
        """Rebuild the SKUs with transfers open from the books (after a restore)."""
        self.transfer_skus = {sku for sku, book in self.books.items()
                              if book.transfers is not None}
