"""What the read side shows of one SKU at one node: the counts behind its ATP.

Operators asking "why can this channel sell only 3?" need on hand, inbound by kind, holds,
allocations and safety stock side by side with the ATP they leave. The engine publishes one
of these per node with every read-model write, and `stockflow inspect` builds the same from
a replay, so both answer with the same figures.
"""

from __future__ import annotations

import msgspec

from .book import SkuBook
from .events import Channel
from .position import Position
from .smart_replenishment import SmartRule, points
from .supply_policy import SupplyView, counted_as_applied, supply_view


class InboundOfKind(msgspec.Struct, array_like=True, frozen=True):
    """Inbound of one supply kind at a node: its units and its earliest ETA."""

    units: int
    earliest_eta_ms: int


class NodePosition(msgspec.Struct, array_like=True, frozen=True):
    """One SKU at one node. atp = on_hand + inbound_due - held - allocated - transfer_out
    - safety_stock - kept_out; it may be negative (a debt, a shortage being resolved), while channels are
    told max(0, atp)."""

    on_hand: int
    inbound: dict[str, InboundOfKind]  # supply kind -> units, earliest ETA
    inbound_due: int  # the inbound whose ETA lies within the horizon: counted in ATP
    held: int  # engine holds, checkout holds taken in included
    allocated: int
    safety_stock: int
    kept_out: int  # units a quarantined lower count keeps out of ATP (snapshot guard)
    atp: int
    # The ATP each channel with its own supply policy sees here (`supply_policy.py`), where
    # it sells from this node; the other channels see `atp`. None: no such channel.
    by_channel: dict[str, int] | None = None
    transfer_out: int = 0  # units reserved here for transfers not yet shipped (transfers.py)
    # What on hand gives now (`Position.gives_now`): on hand - held - allocated - transfer_out
    # - kept_out; below zero where lines wait for inbound (`promised_at`) or under a debt.
    now: int = 0
    # Replenishment here (replenishment.py), where a policy names the node for it: the
    # reorder point and order-up-to it asks at now, and where they came from ("policy", or
    # smart replenishment's "learnt: ..." figures).
    reorder_point: int | None = None
    order_up_to: int | None = None
    points_from: str | None = None


def policy_views(channels: dict[str, Channel], horizon_ms: int) -> dict[str, SupplyView]:
    """channel -> the kinds, shares and horizons it counts, for channels with a policy."""
    views = {}
    for channel_id, channel in channels.items():
        view = supply_view(channel, horizon_ms)
        if view is not None:
            views[channel_id] = view
    return views


def node_positions(book: SkuBook, views: dict[str, SupplyView] | None = None,
                   smart: SmartRule | None = None, clock_ms: int = 0,
                   ) -> dict[str, NodePosition]:
    """node -> its position, ATP as the ledger last applied it (what channels were told);
    `views`: channels with a supply policy (`policy_views`), for `by_channel`; `smart`: smart
    replenishment's rule, for the points learnt by `clock_ms`."""
    kept_out = book.kept_out()
    return {node: _of(pos, kept_out.get(node, 0), views, smart, clock_ms)
            for node, pos in book.positions.items()}


def atp_as_applied(pos: Position) -> int:
    """ATP at the horizon the ledger last applied: asking at a later one would move the
    horizon here, and the ledger would then miss the supply becoming due (backorders)."""
    return pos.atp(pos.inbound.until if pos.inbound is not None else 0)


def _of(pos: Position, kept_out: int, views: dict[str, SupplyView] | None,
        smart: SmartRule | None = None, clock_ms: int = 0) -> NodePosition:
    atp = atp_as_applied(pos) - kept_out
    by_channel = None
    if views:
        for channel_id, view in views.items():
            counted = counted_as_applied(pos, view)
            if counted is not None:
                if by_channel is None:
                    by_channel = {}
                by_channel[channel_id] = pos.atp_counting(counted) - kept_out
    supply = pos.inbound
    by_kind: dict[str, InboundOfKind] = {}
    if supply is not None:
        for entry in supply.entries.values():
            seen = by_kind.get(entry.kind)
            by_kind[entry.kind] = InboundOfKind(entry.qty, entry.eta_ms) if seen is None else \
                InboundOfKind(seen.units + entry.qty, min(seen.earliest_eta_ms, entry.eta_ms))
    return NodePosition(
        on_hand=pos.on_hand, inbound=by_kind,
        inbound_due=supply.due if supply is not None else 0,
        held=pos.held, allocated=pos.allocated, safety_stock=pos.safety_stock,
        kept_out=kept_out, atp=atp, by_channel=by_channel, transfer_out=pos.transfer_out,
        now=pos.gives_now(kept_out),
        **_points(pos, smart, clock_ms),
    )


def _points(pos: Position, smart: SmartRule | None, clock_ms: int) -> dict:
    """The reorder point and order-up-to replenishment asks at now (as `check_reorder_point`
    works them out), and where they came from; nothing where no policy names the node."""
    if pos.reorder_point is None:
        return {}
    learnt = None if smart is None else points(pos, clock_ms, smart)
    if learnt is not None:
        return {"reorder_point": learnt.reorder_point, "order_up_to": learnt.order_up_to,
                "points_from": learnt.why}
    up_to = pos.order_up_to if pos.order_up_to is not None else 2 * pos.reorder_point
    return {"reorder_point": pos.reorder_point, "order_up_to": up_to, "points_from": "policy"}


class SkuReport(msgspec.Struct, frozen=True):
    """What the read side shows of one SKU: each channel's published availability and
    max_line_qty, and each node's position."""

    sku: str
    available: dict[str, int]  # channel -> availability, as last published
    max_line_qty: dict[str, int]  # channel -> the most one order line can be promised
    positions: dict[str, NodePosition]
    # Units checkouts hold that the engine has not taken in yet (a reservation already
    # counts them against every channel; the engine does within `checkout_poll_ms`).
    checkout_pending: int = 0


def sku_report(sku: str, book: SkuBook, channels, horizon_ms: int = 0,
               smart: SmartRule | None = None, clock_ms: int = 0) -> SkuReport:
    """The report of one SKU from its book; `channels`: the channels the engine knows, by id
    (a channel never published has 0, as the contract says); `horizon_ms`: the engine's."""
    views = policy_views(channels, horizon_ms) if isinstance(channels, dict) else None
    return SkuReport(
        sku=sku,
        available={ch: book.published.get(ch, 0) for ch in channels},
        max_line_qty={ch: book.published_line.get(ch, 0) for ch in channels},
        positions=node_positions(book, views, smart, clock_ms),
    )
