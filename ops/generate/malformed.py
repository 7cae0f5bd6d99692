"""Malformed lines: dead-letter material, spread evenly over the trace after the master data.

Each is an order that goes wrong in one way: truncated JSON, an unknown type, a missing
field, a wrong type, qty 0, no lines, or a pickup without a pickup node.
"""

from __future__ import annotations

import math
from bisect import bisect
from itertools import count

import msgspec

from stockflow.state import events as ev

from .lines import LineWriter
from .plan import Plan
from .scenario import SHIP_TO_POOL
from .world import CHANNEL_IDS, NORMAL_CHANNEL_CUM, ORDER_PREFIX, POS

KINDS = ("truncated", "unknown_type", "missing_field", "wrong_type", "qty_zero", "empty_lines",
         "pickup_without_node")


class Malformed:
    """Says when a malformed line is due and makes it. Order numbers are shared with
    `Orders`, so a malformed order takes the next number as a real one would."""

    def __init__(self, plan: Plan, writer: LineWriter, order_numbers: count) -> None:
        self._rng = plan.rng
        self._writer = writer
        self._order_numbers = order_numbers
        self._sku_ids = plan.sku_ids
        self._by_rank, self._zipf_cum = plan.by_rank, plan.zipf_cum
        self._ship_to = plan.ship_to
        # one malformed line per 1/p valid lines, at gaps of 0.3-1.7 times that; the first gap
        # is drawn here, so this is made after the plan and before any line is drawn
        self._p = plan.budget.p_malformed
        self.active = self._p > 0  # callers skip `due()` when it cannot be true
        self._acc = 0.0
        self._next = self._rng.uniform(0.3, 1.7) if self._p else math.inf

    def due(self) -> bool:
        """Counts one valid line; whether a malformed line follows it."""
        self._acc += self._p
        if self._acc < self._next:
            return False
        self._acc -= 1.0
        self._next = self._rng.uniform(0.3, 1.7)
        return True

    def line(self, t: int) -> bytes:
        """A malformed line at time t."""
        rng = self._rng
        msg = self._order(t)
        ts_text = msg["ts"]
        kind = KINDS[int(rng.random() * len(KINDS))]
        if kind == "truncated":
            raw = msgspec.json.encode(msg)
            return raw[: rng.randint(len(raw) // 3, len(raw) - 2)]
        if kind == "unknown_type":
            msg = {"type": rng.choice(("order.updated", "inventory.snapshot", "stock.moved")),
                   "event_id": msg["event_id"], "ts": ts_text, "order_id": msg["order_id"]}
        elif kind == "missing_field":
            del msg[rng.choice(("channel", "lines", "ship_to", "order_id", "ts"))]
        elif kind == "wrong_type":
            msg["lines"][0]["qty"] = rng.choice(("two", "1", 1.5))
        elif kind == "qty_zero":
            msg["lines"][0]["qty"] = 0
        elif kind == "empty_lines":
            msg["lines"] = []
        else:
            msg["fulfillment"] = "pickup"
        return msgspec.json.encode(msg)

    def _order(self, t: int) -> dict:
        """A valid one-line shipped order at time t, as a dict to spoil."""
        rng = self._rng
        event_id, dt = self._writer.next_event(t)
        order_no = next(self._order_numbers)
        s = self._by_rank[bisect(self._zipf_cum, rng.random())]
        ch = bisect(NORMAL_CHANNEL_CUM, rng.random())
        if ch == POS:
            ch = 0
        a = int(rng.random() * SHIP_TO_POOL)
        msg = msgspec.to_builtins(ev.OrderCreated(
            event_id=event_id, ts=dt, order_id=ORDER_PREFIX[ch] + str(order_no),
            channel=CHANNEL_IDS[ch], lines=[ev.OrderLine(line_id="1", sku=self._sku_ids[s],
                                                          qty=rng.randint(1, 3))],
            ship_to=self._ship_to[a], fulfillment="ship", paid=rng.random() < 0.6))
        msg["ts"] = self._writer.stamp(t)[2][1:-1].decode()  # in whole milliseconds
        del msg["pickup_node"], msg["hold_id"]
        return msg
