"""The read model other services see: per SKU, what each channel may sell (in all, and in
one order line), each node's ATP and the position behind it, the engine's live holds, and
what became of the checkout holds.

Built after a batch for the SKUs it touched; the reservation store writes it in one go.
"""

from __future__ import annotations

import msgspec

from .checkout import PREFIX as CHECKOUT
from .checkout import outcomes
from .ledger import Ledger
from .lines import HELD
from .node_position import NodePosition, node_positions, policy_views
from .outputs import OrderStatus


class SkuView(msgspec.Struct, array_like=True):
    sku: str
    channels: dict[str, int]  # channel -> availability, as published
    max_line_qty: dict[str, int]  # channel -> the most one order line can be promised
    nodes: dict[str, int]  # node -> ATP (never below 0)
    positions: dict[str, NodePosition]  # node -> the counts behind its ATP
    checkouts: dict[str, str]  # hold_id -> absorbed | gone
    holds: dict[str, tuple[dict[str, int], int]]  # "order/line" -> (node -> units, ttl ms)
    released: list[str]  # "order/line" no longer held


def views(ledger: Ledger, outputs: list, whole: bool = False) -> list[SkuView]:
    """One view per SKU the last batch touched, with the holds its order statuses changed;
    `whole`: every SKU, with every live hold (to rewrite the read model from scratch)."""
    lines_of: dict[str, set[tuple[str, str]]] = {}
    for out in outputs:
        if type(out) is OrderStatus:
            lines_of.setdefault(out.sku, set()).add((out.order_id, out.line_id))
    if whole:
        for sku, book in ledger.books.items():
            lines_of.setdefault(sku, set()).update(
                line.key for lines in book.lines.values() for line in lines.values()
                if line.status == HELD
            )
    result = []
    supply_views = policy_views(ledger.catalog.channels, ledger.horizon_ms)
    for sku in list(ledger.books) if whole else ledger.published_skus:
        book = ledger.books.get(sku)
        if book is None:
            continue
        holds: dict[str, tuple[dict[str, int], int]] = {}
        released: list[str] = []
        for order_id, line_id in sorted(lines_of.get(sku, ())):
            if order_id.startswith(CHECKOUT):
                continue  # checkout holds live in the reservation store already
            line = book.line(order_id, line_id)
            key = f"{order_id}/{line_id}"
            if line is not None and line.status == HELD and line.deadline_ms is not None:
                holds[key] = (dict(line.parts), max(1, line.deadline_ms - ledger.clock_ms))
            else:
                released.append(key)
        channels = ledger.catalog.channels
        positions = node_positions(book, supply_views, ledger.smart, ledger.clock_ms)
        result.append(SkuView(
            sku=sku,
            channels={ch: book.published.get(ch, 0) for ch in channels},
            max_line_qty={ch: book.published_line.get(ch, 0) for ch in channels},
            nodes={node: max(0, p.atp) for node, p in positions.items()},
            positions=positions,
            checkouts=outcomes(book),
            holds=holds,
            released=released,
        ))
    return result

