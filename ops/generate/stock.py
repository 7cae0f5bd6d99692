"""The stock the generator believes is on the shelf, per SKU x node.

It opens sized to the demand expected over the trace, then moves only by adjustments,
receipts and restocked returns (the generator cannot know where the engine ships from), and
the periodic counts report it. Keys are `sku index * node count + node index`.
"""

from __future__ import annotations

from random import Random
from typing import TYPE_CHECKING

from .scenario import LINES_CUM, QTY_CUM, SPIKE_HOT_P, mean_of

if TYPE_CHECKING:
    from .plan import Plan


class StockBook:
    """On hand and the last count's `seq` per SKU x node."""

    def __init__(self, n_nodes: int) -> None:
        self.n_nodes = n_nodes
        self.on_hand: dict[int, int] = {}
        self.seq: dict[int, int] = {}

    def put_away(self, s: int, node: int, qty: int) -> None:
        """Units reach a shelf (a receipt, a restocked return); a pair never counted before
        starts its counts at seq 1."""
        key = s * self.n_nodes + node
        self.on_hand[key] = self.on_hand.get(key, 0) + qty
        self.seq.setdefault(key, 1)


def opening_stock(rng: Random, plan: Plan) -> StockBook:
    """The first count at every DC and extra node of every SKU, and the flash sale's
    pre-stock at the two douyin DCs."""
    book = StockBook(plan.n_nodes)
    on_hand, seq, nn = book.on_hand, book.seq, plan.n_nodes
    units_per_order = mean_of(LINES_CUM, (1, 2, 3, 4)) * mean_of(QTY_CUM, (1, 2, 3, 5))
    demand_units = plan.budget.n_normal * units_per_order
    for s in range(len(plan.sku_ids)):
        f = 0.1 if rng.random() < 0.1 else rng.uniform(0.5, 3.0)
        tot = demand_units * plan.pop[s] * f + rng.randint(0, 8)
        for d in range(plan.n_dc):
            if rng.random() < 0.08:
                on_hand[s * nn + d] = 0  # out of stock there
            else:
                on_hand[s * nn + d] = round(tot * plan.stock_share[d] * rng.uniform(0.5, 1.5))
            seq[s * nn + d] = rng.randint(1, 5000)
        for x in plan.extra_nodes[s]:
            store = x in plan.store_idx
            on_hand[s * nn + x] = rng.randint(0, 12) if store else rng.randint(20, 200)
            seq[s * nn + x] = rng.randint(1, 500)
    # the flash sale was pre-stocked at the two douyin DCs, but not for all of it
    spike_units = plan.budget.n_spike * SPIKE_HOT_P * 1.3
    for i, s in enumerate(plan.hot):
        share = plan.hot_cum[i] - (plan.hot_cum[i - 1] if i else 0.0)
        for d in (0, 1):
            on_hand[s * nn + d] += round(spike_units * share * 0.35 * rng.uniform(0.8, 1.2))
    return book


def policies(rng: Random, pairs: list[tuple[int, int]],
             book: StockBook) -> list[tuple[int, int, int, int]]:
    """(sku index, DC index, safety stock, reorder point) for the pairs given a policy, both
    sized to the opening stock there."""
    out = []
    nn = book.n_nodes
    for s, d in pairs:
        oh = book.on_hand[s * nn + d]
        safety = round(oh * rng.uniform(0.03, 0.12))
        out.append((s, d, safety, safety + round(oh * rng.uniform(0.1, 0.3)) + 1))
    return out
