"""Supply ticks: what the ERP, the WMS and the stores say about one SKU at one node.

A tick picks a SKU by popularity and one of its nodes (mostly a DC), then is one of:
- a count (`stock.snapshot`) with a rising `seq`, now and then with drift from the books, and
  now and then stale (an older `seq`, which the engine ignores);
- an adjustment (`stock.adjusted`): damage, found units, cycle counts, large write-offs;
- an inbound (`supply.inbound`: in transit, production, purchase order) whose receipt
  (`supply.received`, sometimes partial) is planned for around its ETA, or never comes.
"""

from __future__ import annotations

from bisect import bisect
from itertools import count

from stockflow.state import events as ev

from .lines import LineWriter
from .plan import Plan
from .scenario import P_ADJ, P_DRIFT, P_PARTIAL, P_RECEIVED, P_SNAP, P_STALE
from .schedule import Schedule


class Supply:
    """Makes supply ticks from the plan's SKUs and nodes; moves the plan's stock book."""

    def __init__(self, plan: Plan, writer: LineWriter, schedule: Schedule) -> None:
        self._rng = plan.rng
        self._next_event, self._line, self._stamp = writer.next_event, writer.line, writer.stamp
        self._schedule = schedule
        self._numbers = count(7_001)  # supply ids
        self._sku_ids = plan.sku_ids
        self._node_ids = [n.id for n in plan.nodes]
        self._by_rank, self._zipf_cum = plan.by_rank, plan.zipf_cum
        self._extra_nodes = plan.extra_nodes
        self._n_dc = plan.n_dc
        self._store_idx = plan.store_idx
        self._nn = plan.n_nodes
        self._on_hand, self._seq = plan.stock.on_hand, plan.stock.seq

    def tick(self, t: int) -> bytes:
        """The line of one supply tick at t."""
        rnd = self._rng.random
        s = self._by_rank[bisect(self._zipf_cum, rnd())]
        extra = self._extra_nodes[s]
        if extra and rnd() < 0.2:
            node = extra[int(rnd() * len(extra))]
        else:
            node = int(rnd() * self._n_dc)
        u = rnd()
        if u < P_SNAP:
            return self._count(t, s, node)
        if u < P_SNAP + P_ADJ:
            return self._adjustment(t, s, node)
        return self._inbound(t, s, node)

    def _count(self, t: int, s: int, node: int) -> bytes:
        randint = self._rng.randint
        key = s * self._nn + node
        cur = self._on_hand[key]
        last = self._seq[key]
        if self._rng.random() < P_STALE:  # a late, out-of-order count: ignored by the engine
            on_hand = max(0, cur + randint(-5, 10))
            seq = last - randint(0, 3)
        else:
            if self._rng.random() < P_DRIFT:  # the physical count drifted from the books
                cur = max(0, cur + randint(-3, 3))
                self._on_hand[key] = cur
            on_hand = cur
            seq = self._seq[key] = last + randint(1, 5)
        event_id, ts = self._next_event(t)
        return self._line(ev.StockSnapshot(
            event_id=event_id, ts=ts, sku=self._sku_ids[s], node=self._node_ids[node],
            on_hand=on_hand, seq=seq))

    def _adjustment(self, t: int, s: int, node: int) -> bytes:
        rnd, randint = self._rng.random, self._rng.randint
        key = s * self._nn + node
        cur = self._on_hand[key]
        v = rnd()
        if v < 0.1 and cur >= 5:
            reason = "write_off" if rnd() < 0.6 else "quality_hold"
            delta = -round(cur * self._rng.uniform(0.3, 0.7))
        elif v < 0.55:
            reason, delta = "damaged", -randint(1, 3)
        elif v < 0.8:
            reason, delta = "found", randint(1, 3)
        else:
            reason, delta = "cycle_count", randint(-5, 5) or 1
        if cur + delta < 0:
            delta = -cur
        if delta == 0:
            reason, delta = "found", randint(1, 3)
        self._on_hand[key] = cur + delta
        event_id, ts = self._next_event(t)
        return self._line(ev.StockAdjusted(
            event_id=event_id, ts=ts, sku=self._sku_ids[s], node=self._node_ids[node],
            delta=delta, reason=reason))

    def _inbound(self, t: int, s: int, node: int) -> bytes:
        """At a DC or a distributor, now and then a transfer to a store; its receipt planned."""
        rng = self._rng
        v = rng.random()
        if v < 0.55:
            kind, prefix, lead = "in_transit", "TR-", rng.randint(3_600_000, 43_200_000)
        elif v < 0.7:
            kind, prefix, lead = "production", "MO-", rng.randint(86_400_000, 432_000_000)
        else:
            kind, prefix, lead = "purchase_order", "PO-", rng.randint(172_800_000, 864_000_000)
        lead = (t + lead) // 60_000 * 60_000 - t  # ETAs are whole minutes
        base = sum(self._on_hand.get(s * self._nn + d, 0) for d in range(self._n_dc))
        qty = max(6, round(base * rng.uniform(0.1, 0.5)))
        if node >= self._n_dc and node in self._store_idx:
            qty = rng.randint(2, 12)
            kind, prefix = "in_transit", "TR-"
        sid = f"{prefix}{next(self._numbers)}"
        sku, node_id = self._sku_ids[s], self._node_ids[node]
        event_id, ts = self._next_event(t)
        eta, eta_old, eta_new = self._stamp(t + lead)
        line = self._line(ev.SupplyInbound(event_id=event_id, ts=ts, supply_id=sid, sku=sku,
                                           node=node_id, qty=qty, eta=eta, kind=kind))
        line = line.replace(eta_old, eta_new, 1)
        if rng.random() < P_RECEIVED:
            got = qty if rng.random() >= P_PARTIAL else max(1, round(qty * rng.uniform(0.5, 0.95)))
            at = t + max(60_000, int(lead * rng.uniform(0.85, 1.25)))
            self._schedule.follow_up(at, ev.SupplyReceived,
                                     {"supply_id": sid, "sku": sku, "node": node_id, "qty": got})
        return line
