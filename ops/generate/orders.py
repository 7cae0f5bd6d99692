"""An order and its follow-ups.

An `order.created` of 1-4 lines on Zipf-popular SKUs (a flash-sale order: mostly one line on
a hot SKU), on a channel drawn by its weight; store-pos orders are pickups at a store, the
others ship to a customer. Its follow-ups are planned at once: the payment of an unpaid order
(mostly within the hold TTL, some late, some never), a cancel (sometimes of some lines), a
resend of the same order under a new event id, a return of one line.
"""

from __future__ import annotations

import math
from bisect import bisect
from itertools import count

from stockflow.state import events as ev

from .lines import LINE_IDS_NULL, PICKUP_ORDER_NULLS, SHIP_ORDER_NULLS, LineWriter
from .plan import Plan
from .scenario import (
    LINES_CUM, P_CANCEL, P_CANCEL_LINES, P_PAY_LATE, P_PAY_ONTIME, P_RESEND, P_RESTOCK, P_RETURN,
    QTY_CUM, SHIP_TO_POOL, SPIKE_HOT_P, SPIKE_LINES_CUM, SPIKE_QTY_CUM,
)
from .schedule import Schedule
from .world import CHANNEL_IDS, NORMAL_CHANNEL_CUM, ORDER_PREFIX, P_PAID, POS, SPIKE_CHANNEL_CUM

_LINE_IDS = [str(i) for i in range(1, 7)]
_LOG_5S, _LOG_30MIN = math.log(5_000), math.log(1_800_000)  # a cancel comes this long after
_LOG_20MIN, _LOG_6H = math.log(1_200_000), math.log(21_600_000)  # a return, after payment


class Orders:
    """Makes orders from the plan's channels, SKUs and customers; plans their follow-ups."""

    def __init__(self, plan: Plan, writer: LineWriter, schedule: Schedule) -> None:
        self.numbers = count(100_001)  # order numbers, shared with malformed orders
        self._rng = plan.rng
        self._rnd = plan.rng.random
        self._next_event, self._line = writer.next_event, writer.line
        self._schedule = schedule
        self._sku_ids = plan.sku_ids
        self._n_skus = len(plan.sku_ids)
        self._by_rank, self._zipf_cum = plan.by_rank, plan.zipf_cum
        self._hot, self._hot_cum = plan.hot, plan.hot_cum
        self._node_ids = [n.id for n in plan.nodes]
        self._ttl_ms = plan.ttl_ms
        self._ship_to, self._ship_to_dc = plan.ship_to, plan.ship_to_dc
        self._store_idx, self._store_ship_to = plan.store_idx, plan.store_ship_to

    def order(self, t: int, spike: bool) -> bytes:
        """The line of an order.created at t; its follow-ups are planned."""
        rnd = self._rnd
        ch = bisect(SPIKE_CHANNEL_CUM if spike else NORMAL_CHANNEL_CUM, rnd())
        order_lines = self._order_lines(spike)
        oid = ORDER_PREFIX[ch] + str(next(self.numbers))
        paid = rnd() < P_PAID[ch]
        if ch == POS:
            k = int(rnd() * len(self._store_idx))
            node_i = self._store_idx[k]  # where a return goes
            fields = {"order_id": oid, "channel": "store-pos", "lines": order_lines,
                      "ship_to": self._store_ship_to[k], "fulfillment": "pickup", "paid": paid,
                      "pickup_node": self._node_ids[node_i]}
            nulls = PICKUP_ORDER_NULLS
        else:
            a = int(rnd() * SHIP_TO_POOL)
            node_i = self._ship_to_dc[a]
            fields = {"order_id": oid, "channel": CHANNEL_IDS[ch], "lines": order_lines,
                      "ship_to": self._ship_to[a], "fulfillment": "ship", "paid": paid}
            nulls = SHIP_ORDER_NULLS
        event_id, ts = self._next_event(t)
        line = self._line(ev.OrderCreated(event_id=event_id, ts=ts, **fields), nulls)
        self._follow_ups(t, ch, fields, nulls, node_i)
        return line

    def _order_lines(self, spike: bool) -> list[ev.OrderLine]:
        """1-4 lines on distinct SKUs (fewer when eight draws in a row hit SKUs taken)."""
        rnd, by_rank, zipf_cum = self._rnd, self._by_rank, self._zipf_cum
        hot, hot_cum = self._hot, self._hot_cum
        nl = bisect(SPIKE_LINES_CUM if spike else LINES_CUM, rnd()) + 1
        if nl > self._n_skus:  # a catalogue smaller than an order
            nl = self._n_skus
        lines = []
        used = []
        for i in range(nl):
            for _ in range(8):
                if spike and rnd() < SPIKE_HOT_P:
                    s = hot[bisect(hot_cum, rnd())]
                else:
                    s = by_rank[bisect(zipf_cum, rnd())]
                if s not in used:
                    break
            else:
                break
            used.append(s)
            if spike:
                q = bisect(SPIKE_QTY_CUM, rnd()) + 1
            else:
                q = bisect(QTY_CUM, rnd()) + 1
                if q == 4:
                    q = self._rng.randint(4, 6)
            lines.append(ev.OrderLine(line_id=_LINE_IDS[i], sku=self._sku_ids[s], qty=q))
        return lines

    def _follow_ups(self, t: int, ch: int, order: dict, nulls: tuple[bytes, ...],
                    node_i: int) -> None:
        """Plans the payment, cancel, resend and return of the order created at t with the
        fields `order`; a return goes to node `node_i`."""
        rnd, rng, follow_up = self._rnd, self._rng, self._schedule.follow_up
        paid = order["paid"]
        pay_at = -1
        if not paid:
            u = rnd()
            ttl = self._ttl_ms[ch]
            if u < P_PAY_ONTIME:
                pay_at = t + rng.randint(1500, max(2000, min(int(ttl * 0.8), 240_000)))
            elif u < P_PAY_ONTIME + P_PAY_LATE:
                pay_at = t + int(ttl * rng.uniform(1.2, 3.0))
        cancelled = rnd() < P_CANCEL
        if cancelled:
            c_at = t + int(math.exp(rng.uniform(_LOG_5S, _LOG_30MIN)))
            if pay_at > c_at:
                pay_at = -1  # cancelled before the customer came back to pay
            lines, c_lines = order["lines"], None
            if len(lines) > 1 and rnd() < P_CANCEL_LINES:
                line_ids = [ln.line_id for ln in lines]
                c_lines = sorted(rng.sample(line_ids, rng.randint(1, len(lines) - 1)))
            follow_up(c_at, ev.OrderCancelled,
                      {"order_id": order["order_id"], "line_ids": c_lines},
                      LINE_IDS_NULL if c_lines is None else ())
        if pay_at >= 0:
            follow_up(pay_at, ev.OrderPaid, {"order_id": order["order_id"]})
        if rnd() < P_RESEND:
            follow_up(t + rng.randint(1_000, 120_000), ev.OrderCreated, order, nulls)
        if not cancelled and (paid or pay_at >= 0) and rnd() < P_RETURN:
            ln = order["lines"][int(rnd() * len(order["lines"]))]
            r_at = max(t, pay_at) + int(math.exp(rng.uniform(_LOG_20MIN, _LOG_6H)))
            follow_up(r_at, ev.OrderReturned,
                      {"order_id": order["order_id"], "line_id": ln.line_id, "sku": ln.sku,
                       "node": self._node_ids[node_i], "qty": rng.randint(1, ln.qty),
                       "restock": rnd() < P_RESTOCK})
