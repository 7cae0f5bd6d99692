"""Checkout holds: units a checkout reserved through the reservation API, before any order.

The reservation API grants a hold against the availability the engine last published, minus
the holds it has not absorbed yet. The engine takes a SKU's live checkout holds in before it
applies anything else of that SKU (and, for a SKU with no other traffic, soon after a grant or
a release), as one `CheckoutTaken`, oldest grant first, and reconciles:
- a hold it has not seen is placed like an unpaid order line (order id `checkout:<hold_id>`),
  so no other order can take its units (one that cannot be placed, as stock fell meanwhile,
  is `rejected`, and gone from the reservation store);
- a hold it has that is no longer live gives its units back: `cancelled` with reason
  `hold_released` where the checkout released it, `expired` (`hold_expired`) where it ran out;
- an `order.created` carrying the `hold_id` gives the hold's units back and places the order's
  line in the same step, so the units pass from the checkout to its order and to nobody else.
What became of each hold (absorbed, or gone) goes back to the reservation store with the
availability that accounts for it. Each intake is journalled where it applied (see
`CheckoutTaken`), so a replay of what Kafka recorded takes the same holds at the same place.
"""

from __future__ import annotations

from .book import SkuBook
from .context import Ctx
from .events import CheckoutHold
from .holds import expire_line
from .lines import CANCELLED, HELD, REJECTED, Line
from .placement import place, release_all, unfilled

ABSORBED = "absorbed"  # held by the ledger: counted in the published availability
GONE = "gone"  # expired, released, settled by its order, or could not be placed

PREFIX = "checkout:"


def order_id_of(hold_id: str) -> str:
    return PREFIX + hold_id


def reconcile(ctx: Ctx, live: list[CheckoutHold], seq: int, released: list[str] = ()) -> None:
    """Make the ledger's checkout holds of this SKU the live ones; of those it had, the ones
    in `released` were released by their checkout, the others expired."""
    book = ctx.book
    live_ids = {h.hold_id for h in live}
    for hold_id in [h for h in book.checkouts if h not in live_ids]:
        line = book.line(order_id_of(hold_id), "1")
        if line is None:
            continue
        if hold_id in released:
            release_line(ctx, line)
        else:
            expire_line(ctx, line)
    for hold in live:
        if hold.hold_id in book.checkouts:
            continue
        line = Line(
            order_id=order_id_of(hold.hold_id), line_id="1", qty=hold.qty,
            channel=hold.channel, region="", lat=0.0, lon=0.0, fulfillment="ship",
            pickup_node=None, paid=False, seq=seq, deadline_ms=hold.expires_ms,
        )
        book.add_line(line)
        book.checkouts[hold.hold_id] = hold.expires_ms
        if not place(ctx, line):  # no stock after all: outcomes() reports it gone
            line.status = REJECTED
            ctx.emit.status(line, ctx.sku, REJECTED, line.qty, reason=unfilled(ctx, line))


def release_line(ctx: Ctx, line: Line) -> None:
    """The checkout released its hold before it ran out: the units go back."""
    if line.status != HELD:
        return
    release_all(ctx, line, "released")
    line.status = CANCELLED
    ctx.emit.status(line, ctx.sku, CANCELLED, line.qty, reason="hold_released")


def settle(ctx: Ctx, hold_id: str) -> None:
    """The order that carries `hold_id` arrived: the hold gives its units back to it."""
    line = ctx.book.line(order_id_of(hold_id), "1")
    if line is not None and line.status == HELD:
        release_all(ctx, line, "settled")
        line.status = CANCELLED
        ctx.emit.settled += 1


def outcomes(book: SkuBook) -> dict[str, str]:
    """hold_id -> absorbed or gone, for every checkout hold the ledger knows; forgets the gone."""
    result: dict[str, str] = {}
    for hold_id in list(book.checkouts):
        lines = book.lines.get(order_id_of(hold_id))
        line = lines.get("1") if lines else None
        if line is not None and line.status == HELD:
            result[hold_id] = ABSORBED
        else:
            result[hold_id] = GONE
            del book.checkouts[hold_id]
            book.lines.pop(order_id_of(hold_id), None)
    return result
