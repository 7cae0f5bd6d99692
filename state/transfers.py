"""Transfers: stock moved between two nodes of one SKU, held while it moves.

A `replenishment.requested` with `from_node` (a reorder point's transfer, or a rebalancing
suggestion) is a transfer under its command id. Until the WMS ships it, its units are
reserved at the source (`Position.transfer_out`: committed like a hold, out of ATP, so the
source cannot sell them again) and counted at the destination as inbound supply of kind
`in_transit`, due `transfer_lead_s` after the request (the inbound horizon decides when it is
sellable there). Then:
- `transfer.shipped`: on hand at the source drops by what shipped and the reserve is
  released; the destination counts what shipped in transit (a shipment the engine never
  asked for is counted the same way);
- `supply.received` at the destination with `supply_id` = the command id: those units leave
  in transit for on hand; the transfer ends once all it shipped is received;
- `transfer.cancelled`, or no shipment within `transfer_ttl_s` of event time (alert
  `transfer_expired`): the reserve is released and the in-transit units are dropped;
- a shortage at the source takes unshipped transfers back before any order line's units,
  newest first (alert `transfer_taken_back`): moving stock between nodes matters less than a
  customer's order.
Both nodes are in the SKU's book, so a transfer never leaves its bucket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import msgspec

if TYPE_CHECKING:
    from .config import EngineConfig
    from .context import Ctx
    from .events import TransferShipped


class Transfer(msgspec.Struct, array_like=True, gc=False):  # gc=False: see inbound.py
    """One transfer, kept under its command id in the SKU's book."""

    from_node: str
    to_node: str
    qty: int  # units it moves: reserved at `from_node` until shipped, then what shipped
    eta_ms: int  # when the destination expects it (the in-transit entry's ETA)
    deadline_ms: int  # not shipped by then: it expires
    shipped: bool = False
    received: int = 0  # units the destination has received of it

    @property
    def reserved(self) -> int:
        return 0 if self.shipped else self.qty

    @property
    def in_transit(self) -> int:
        return max(0, self.qty - self.received)


class TransferTerms(NamedTuple):
    lead_ms: int  # request -> expected at the destination
    ttl_ms: int  # request -> expires unless shipped


def terms_of(config: EngineConfig) -> TransferTerms:
    return TransferTerms(int(config.transfer_lead_s * 1000), int(config.transfer_ttl_s * 1000))


def open_transfer(
    ctx: Ctx, from_node: str, to_node: str, qty: int, reason: str, terms: TransferTerms,
) -> str:
    """Request a transfer: the command goes out, the units are reserved at the source and
    counted in transit at the destination. Returns its command id."""
    command_id = ctx.emit.replenish(ctx.sku, to_node, qty, from_node, reason)
    transfer = Transfer(from_node, to_node, qty, ctx.clock_ms + terms.lead_ms,
                        ctx.clock_ms + terms.ttl_ms)
    ctx.book.add_transfer(command_id, transfer)
    ctx.moved_at(from_node)
    ctx.book.position(from_node).transfer_out += qty
    _count_in_transit(ctx, command_id, transfer)
    return command_id


def ship_transfer(ctx: Ctx, ev: TransferShipped, terms: TransferTerms) -> bool:
    """The WMS shipped it: the reserve goes, the destination counts what shipped in transit.
    Returns False for a transfer shipped already (one shipment per transfer); on hand at the
    source is the caller's to lower."""
    book = ctx.book
    transfer = book.transfer(ev.command_id)
    if transfer is None:  # a transfer the engine did not ask for: counted from its shipment
        transfer = Transfer(ev.from_node, ev.to_node, 0, ctx.clock_ms + terms.lead_ms,
                            ctx.clock_ms)
        book.add_transfer(ev.command_id, transfer)
    elif transfer.shipped:
        return False
    else:
        _release(ctx, ev.command_id, transfer)
        if transfer.to_node != ev.to_node:  # shipped elsewhere than asked: not coming here
            ctx.moved_at(transfer.to_node)
            ctx.book.position(transfer.to_node).set_inbound(
                ev.command_id, 0, transfer.eta_ms, "in_transit")
    transfer.from_node, transfer.to_node = ev.from_node, ev.to_node
    transfer.qty, transfer.shipped = ev.qty, True
    _count_in_transit(ctx, ev.command_id, transfer)
    _end_if_received(ctx, ev.command_id, transfer)
    return True


def receive_transfer(ctx: Ctx, command_id: str, node: str, qty: int) -> bool:
    """A receipt at `node` under a transfer's command id: those units leave in transit (on
    hand is the caller's). False when it is no transfer into `node`."""
    transfer = ctx.book.transfer(command_id)
    if transfer is None or transfer.to_node != node:
        return False
    transfer.received += qty
    _count_in_transit(ctx, command_id, transfer)
    _end_if_received(ctx, command_id, transfer)
    return True


def cancel_transfer(ctx: Ctx, command_id: str) -> bool:
    """The transfer will not happen: reserve released, in transit dropped."""
    transfer = ctx.book.transfer(command_id)
    if transfer is None:
        return False
    _release(ctx, command_id, transfer)
    ctx.moved_at(transfer.to_node)
    ctx.book.position(transfer.to_node).set_inbound(command_id, 0, transfer.eta_ms, "in_transit")
    ctx.book.end_transfer(command_id)
    return True


def expire_transfers(ctx: Ctx) -> bool:
    """Cancel every transfer not shipped by its deadline (alert `transfer_expired`); True if
    one expired."""
    transfers = ctx.book.transfers
    if transfers is None:
        return False
    due = [(t.deadline_ms, command_id) for command_id, t in transfers.items()
           if not t.shipped and t.deadline_ms <= ctx.clock_ms]
    for _, command_id in sorted(due):
        transfer = transfers[command_id]
        ctx.emit.alert(
            "transfer_expired", ctx.sku,
            f"transfer of {transfer.qty} from {transfer.from_node} to {transfer.to_node} not "
            f"shipped by its deadline: reserve released, no longer in transit",
            transfer.to_node, command_id,
        )
        cancel_transfer(ctx, command_id)
    return bool(due)


def take_back_transfers(ctx: Ctx, node: str, short: int, why: str | None = None) -> int:
    """A shortage at `node` (or what `why` says): cancel unshipped transfers out of it,
    newest first, until `short` units are freed or none is left; returns the units freed."""
    transfers = ctx.book.transfers
    if transfers is None or not short:
        return 0
    out = [(t.deadline_ms, command_id) for command_id, t in transfers.items()
           if t.from_node == node and not t.shipped]
    freed = 0
    for _, command_id in sorted(out, reverse=True):
        if freed >= short:
            break
        transfer = transfers[command_id]
        freed += transfer.qty
        ctx.emit.alert(
            "transfer_taken_back", ctx.sku,
            f"{why or f'shortage at {node}'}: transfer of {transfer.qty} to "
            f"{transfer.to_node} cancelled before any order line's units",
            node, command_id,
        )
        cancel_transfer(ctx, command_id)
    return freed


def _release(ctx: Ctx, command_id: str, transfer: Transfer) -> None:
    """The reserve at the source goes back to its ATP."""
    if transfer.reserved:
        ctx.moved_at(transfer.from_node)
        ctx.book.position(transfer.from_node).transfer_out -= transfer.reserved
        ctx.supply_rose = True


def _count_in_transit(ctx: Ctx, command_id: str, transfer: Transfer) -> None:
    pos = ctx.book.position(transfer.to_node)
    ctx.moved_at(transfer.to_node)
    pos.reported = True
    old = pos.set_inbound(command_id, transfer.in_transit, transfer.eta_ms, "in_transit")
    pos.advance(ctx.until_ms)  # due now or not, as the horizon already stands
    if transfer.in_transit > old:
        ctx.supply_rose = True


def _end_if_received(ctx: Ctx, command_id: str, transfer: Transfer) -> None:
    if transfer.shipped and transfer.received >= transfer.qty:
        ctx.book.end_transfer(command_id)

