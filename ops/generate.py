"""Synthetic omnichannel workload: a stream of contract-v1 input events as JSON Lines.

`generate(Scenario(...))` yields one message per line, in event-time order, and is
deterministic: the same Scenario gives byte-identical output (one `random.Random(seed)`, no
`hash()` of strings, no wall clock). Event time starts at 2026-11-10T00:00:00Z.

What the trace holds, in order of event time:

* master data at t0: ~6 DCs in distinct provinces, `stores` stores spread over provinces
  (all can pick up, some can ship), 1-2 distributors, six channels with different policies
  (tmall, jd, douyin-live, wechat, own-shop, store-pos) and `policy.upserted` for ~30% of the
  sku x DC pairs;
* at t0+60s an initial `stock.snapshot` for every SKU at every DC (plus a few stores per SKU
  and a distributor for some), sized to the SKU's popularity;
* from t0+120s, over a span that grows with the size of the trace:
  - orders: Zipf-popular SKUs (exponent 1.1), 1-4 lines, qty mostly 1-3, weighted channels,
    store-pos orders are pickups at a store; ~60% paid at creation, the unpaid mostly paid
    within the hold TTL, some late, some never; ~3% cancelled (some per line), a few returns,
    ~1% resent `order.created` under a new event_id;
  - a flash sale: a 2-minute window with ~15% of all orders on 3-5 hot SKUs, mostly on
    douyin-live;
  - supply: periodic snapshots (rising `seq`, ~2% stale), `stock.adjusted` deltas (damage,
    found, cycle counts, large write-offs), `supply.inbound` (in transit, production,
    purchase order) followed later by `supply.received` (sometimes partial, sometimes never);
* ~0.5% of messages are re-sent as exact duplicates (same bytes) right after the original,
  and `malformed_rate` of the lines are dead-letter material (truncated JSON, unknown type,
  missing field, wrong type, qty 0, empty lines, pickup without pickup_node).

No `shipment.confirmed` is emitted: the generator cannot know which node the engine picks.
Physical stock therefore only moves by adjustments, receipts and restocked returns, and the
periodic snapshots report exactly that (plus small counting drift now and then).
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect
from datetime import datetime, timedelta, timezone
from typing import BinaryIO, Iterator

import msgspec

from stockflow.state import events as ev

__all__ = ["Scenario", "generate", "write_jsonl", "BASE_TIME"]

BASE_TIME = datetime(2026, 11, 10, tzinfo=timezone.utc)


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    events: int = 100_000  # approximate total number of lines to emit (+-5%)
    seed: int = 7
    skus: int = 2_000
    stores: int = 24
    malformed_rate: float = 0.0  # share of lines written as malformed messages


# What `stockflow generate` and `stockflow demo` write unless told otherwise: a few malformed
# lines among the events, so the dead letters show.
GENERATED = Scenario(malformed_rate=0.0005)
DEMO = msgspec.structs.replace(GENERATED, events=200_000)


# -- geography -------------------------------------------------------------------------
# (region, code, lat, lon of the capital, weight of online demand)
PROVINCES: tuple[tuple[str, str, float, float, float], ...] = (
    ("Guangdong", "GD", 23.13, 113.26, 12.0),
    ("Zhejiang", "ZJ", 30.27, 120.15, 9.0),
    ("Jiangsu", "JS", 32.06, 118.80, 9.0),
    ("Shanghai", "SH", 31.23, 121.47, 7.0),
    ("Beijing", "BJ", 39.90, 116.41, 6.0),
    ("Shandong", "SD", 36.65, 117.12, 6.0),
    ("Sichuan", "SC", 30.57, 104.07, 5.0),
    ("Henan", "HA", 34.75, 113.63, 5.0),
    ("Hubei", "HB", 30.59, 114.31, 4.0),
    ("Fujian", "FJ", 26.07, 119.30, 4.0),
    ("Hunan", "HN", 28.23, 112.94, 3.5),
    ("Hebei", "HE", 38.04, 114.51, 3.0),
    ("Anhui", "AH", 31.82, 117.23, 3.0),
    ("Shaanxi", "SN", 34.34, 108.94, 2.5),
    ("Chongqing", "CQ", 29.56, 106.55, 2.5),
    ("Tianjin", "TJ", 39.13, 117.20, 2.0),
    ("Liaoning", "LN", 41.80, 123.43, 2.0),
    ("Yunnan", "YN", 25.04, 102.71, 1.5),
    ("Guangxi", "GX", 22.82, 108.37, 1.5),
    ("Jiangxi", "JX", 28.68, 115.86, 1.5),
    ("Heilongjiang", "HL", 45.80, 126.53, 1.0),
    ("Xinjiang", "XJ", 43.83, 87.62, 0.5),
)
# DCs sit on the outskirts of big logistics hubs. (id, region, lat, lon, share of stock)
DCS: tuple[tuple[str, str, float, float, float], ...] = (
    ("DC-SH", "Shanghai", 31.05, 121.25, 0.25),
    ("DC-GZ", "Guangdong", 23.30, 113.45, 0.22),
    ("DC-BJ", "Beijing", 39.75, 116.55, 0.17),
    ("DC-HZ", "Zhejiang", 30.35, 120.30, 0.13),
    ("DC-WH", "Hubei", 30.50, 114.20, 0.12),
    ("DC-CD", "Sichuan", 30.65, 103.95, 0.11),
)
DISTRIBUTORS: tuple[tuple[str, str, float, float], ...] = (
    ("DS-ZZ", "Henan", 34.80, 113.70),
    ("DS-XA", "Shaanxi", 34.30, 108.90),
)

# -- channels --------------------------------------------------------------------------
# id, order-id prefix, weight in normal traffic, weight in the flash sale, P(paid at creation)
CHANNELS: tuple[tuple[str, str, float, float, float], ...] = (
    ("tmall", "TM-", 0.32, 0.12, 0.55),
    ("jd", "JD-", 0.20, 0.0, 0.60),
    ("douyin-live", "DY-", 0.12, 0.80, 0.50),
    ("wechat", "WX-", 0.10, 0.08, 0.55),
    ("own-shop", "OS-", 0.10, 0.0, 0.50),
    ("store-pos", "POS-", 0.16, 0.0, 0.95),
)
_POS = 5  # index of store-pos in CHANNELS

# -- behaviour knobs -------------------------------------------------------------------
ZIPF_S = 1.1
LINES_CUM = (0.74, 0.88, 0.96, 1.0)  # 1, 2, 3, 4 lines
SPIKE_LINES_CUM = (0.95, 1.0)
QTY_CUM = (0.64, 0.86, 0.95, 1.0)  # 1, 2, 3, 4-6
SPIKE_QTY_CUM = (0.75, 0.95, 1.0)  # 1, 2, 3
SPIKE_SHARE = 0.15  # of all orders
SPIKE_WINDOW_MS = 120_000
SPIKE_HOT_P = 0.95  # a spike order line is on a hot SKU with this probability
P_PAY_ONTIME, P_PAY_LATE = 0.82, 0.08  # of unpaid orders; the rest never pay
P_CANCEL = 0.03
P_CANCEL_LINES = 0.5  # of cancels on multi-line orders: only some lines
P_RESEND = 0.01
P_RETURN = 0.006
P_RESTOCK = 0.7
P_DUP = 0.005
SUPPLY_SHARE = 0.12  # of the dynamic events
P_SNAP, P_ADJ = 0.5, 0.25  # supply tick mix; the rest is inbound
P_STALE = 0.02
P_DRIFT = 0.15
P_RECEIVED, P_PARTIAL = 0.85, 0.2
POLICY_SHARE = 0.3
ORDER_START_MS = 120_000
SNAPSHOT_MS = 60_000
ORDERS_PER_S = 6.0  # normal traffic rate that sets the span of the trace
SHIP_TO_POOL = 4096

# event kinds in the scheduling heap
_EMIT, _DUP, _NORMAL, _SPIKE, _SUPPLY = range(5)

# `None` optional fields are encoded as null by the shared Structs; drop them (cosmetic).
_NULLS = {
    ev.OrderCreated: (b',"pickup_node":null', b',"hold_id":null'),
    ev.OrderCancelled: (b',"line_ids":null',),
    ev.PolicyUpserted: (b',"order_up_to":null', b',"reorder_point":null'),
    ev.ChannelUpserted: (b',"wos_weeks":null',),
}
_ORDER_NULLS = _NULLS[ev.OrderCreated]


def _cum(weights) -> list[float]:
    out, acc = [], 0.0
    total = float(sum(weights))
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out


def _mean_index(cum, values) -> float:
    prev, m = 0.0, 0.0
    for c, v in zip(cum, values):
        m += (c - prev) * v
        prev = c
    return m


class _Plan:
    """Everything decided before the first line: master data, stock, budget."""

    def __init__(self, sc: Scenario) -> None:
        if sc.events <= 0 or sc.skus <= 0 or sc.stores <= 0:
            raise ValueError("events, skus and stores must be positive")
        if not 0.0 <= sc.malformed_rate < 0.5:
            raise ValueError("malformed_rate must be in [0, 0.5)")
        rng = self.rng = random.Random(sc.seed)
        self.sc = sc

        # nodes: DCs, stores, distributors
        nodes: list[ev.Node] = []
        self.stock_share: list[float] = []
        for nid, region, lat, lon, share in DCS:
            nodes.append(
                ev.Node(id=nid, kind="dc", region=region, lat=lat, lon=lon, can_ship=True,
                        can_pickup=False, ship_cost=round(rng.uniform(5.5, 7.5), 1))
            )
            self.stock_share.append(share)
        self.n_dc = len(DCS)
        per_code: dict[str, int] = {}
        prov_cum = _cum([p[4] for p in PROVINCES])
        self.store_idx: list[int] = []
        for i in range(sc.stores):
            p = PROVINCES[i] if i < len(PROVINCES) else PROVINCES[bisect(prov_cum, rng.random())]
            per_code[p[1]] = per_code.get(p[1], 0) + 1
            self.store_idx.append(len(nodes))
            nodes.append(
                ev.Node(id=f"ST-{p[1]}-{per_code[p[1]]:02d}", kind="store", region=p[0],
                        lat=round(p[2] + rng.uniform(-0.15, 0.15), 3),
                        lon=round(p[3] + rng.uniform(-0.15, 0.15), 3),
                        can_ship=rng.random() < 0.35, can_pickup=True,
                        ship_cost=round(rng.uniform(8.0, 12.0), 1))
            )
        self.dist_idx: list[int] = []
        for nid, region, lat, lon in DISTRIBUTORS[: rng.randint(1, 2)]:
            self.dist_idx.append(len(nodes))
            nodes.append(
                ev.Node(id=nid, kind="distributor", region=region, lat=lat, lon=lon,
                        can_ship=True, can_pickup=False,
                        ship_cost=round(rng.uniform(7.0, 9.0), 1))
            )
        self.nodes = nodes
        self.n_nodes = len(nodes)
        dc_ids = [n.id for n in nodes[: self.n_dc]]
        store_ids = [nodes[i].id for i in self.store_idx]
        shipping_stores = [nodes[i].id for i in self.store_idx if nodes[i].can_ship]
        self.channels = [
            ev.Channel(id="tmall", nodes=["*"], hold_ttl_s=900, allow_split=True,
                       backorder=False, wos_weeks=1.5),
            ev.Channel(id="jd", nodes=dc_ids, hold_ttl_s=1800, allow_split=True,
                       backorder=False, wos_weeks=1.0),
            ev.Channel(id="douyin-live", nodes=["DC-SH", "DC-GZ"], hold_ttl_s=30,
                       allow_split=False, backorder=False, wos_weeks=0.5),
            ev.Channel(id="wechat", nodes=dc_ids + shipping_stores, hold_ttl_s=600,
                       allow_split=False, backorder=False, wos_weeks=1.0),
            ev.Channel(id="own-shop", nodes=["*"], hold_ttl_s=1200, allow_split=True,
                       backorder=True, wos_weeks=2.0),
            ev.Channel(id="store-pos", nodes=store_ids, hold_ttl_s=60, allow_split=False,
                       backorder=True),
        ]
        self.ttl_ms = [int(c.hold_ttl_s * 1000) for c in self.channels]

        # SKUs and their popularity (rank 0 = most popular)
        n = sc.skus
        width = max(5, len(str(n)))
        self.sku_ids = [f"SKU-{i:0{width}d}" for i in range(1, n + 1)]
        self.by_rank = list(range(n))
        rng.shuffle(self.by_rank)
        w = [1.0 / (r + 1) ** ZIPF_S for r in range(n)]
        self.zipf_cum = _cum(w)
        total_w = sum(w)
        self.pop = [0.0] * n  # share of demand per sku index
        for r, s in enumerate(self.by_rank):
            self.pop[s] = w[r] / total_w
        k = min(n, rng.randint(3, 5))
        lo, hi = min(10, n - k), min(n, 120)
        self.hot = [self.by_rank[r] for r in rng.sample(range(lo, max(hi, lo + k)), k)]
        self.hot_cum = _cum([1.0 / (i + 1) ** 0.8 for i in range(k)])

        # which extra nodes (stores, distributors) hold each SKU; which DC pairs get policies
        self.extra_nodes: list[list[int]] = []
        n_extra = 0
        for s in range(n):
            extra = rng.sample(self.store_idx, min(len(self.store_idx), rng.randint(0, 3)))
            if self.dist_idx and rng.random() < 0.1:
                extra.append(rng.choice(self.dist_idx))
            self.extra_nodes.append(extra)
            n_extra += len(extra)
        self.policy_pairs = [
            (s, d) for s in range(n) for d in range(self.n_dc) if rng.random() < POLICY_SHARE
        ]
        n_snap0 = n * self.n_dc + n_extra
        n_master = len(nodes) + len(self.channels) + len(self.policy_pairs)

        # budget: master + (snap0 + dynamic) * (1 + P_DUP) = valid lines
        total = sc.events
        self.n_malformed = round(total * sc.malformed_rate)
        valid = total - self.n_malformed
        dynamic = (valid - n_master) / (1 + P_DUP) - n_snap0
        e_order = SPIKE_SHARE * self._events_per_order(3) + (1 - SPIKE_SHARE) * self._events_per_order(2)
        e_supply = 1 + (1 - P_SNAP - P_ADJ) * P_RECEIVED
        n_orders = int((1 - SUPPLY_SHARE) * dynamic / e_order) if dynamic > 0 else 0
        if n_orders < 20:
            need = int((n_master + n_snap0) * 1.5) + 200
            raise ValueError(
                f"Scenario(events={total}) is too small for {n} skus and {sc.stores} stores: "
                f"master data and initial snapshots alone take {n_master + n_snap0} lines; "
                f"use events >= {need} or fewer skus"
            )
        self.n_spike = round(SPIKE_SHARE * n_orders)
        self.n_normal = n_orders - self.n_spike
        self.n_supply = max(1, round(SUPPLY_SHARE * dynamic / e_supply))
        span_s = min(max(self.n_normal / ORDERS_PER_S, 3600.0), 3 * 86400.0)
        self.span_ms = int(span_s * 1000)
        self.spike_start = ORDER_START_MS + int(0.45 * self.span_ms)
        # malformed lines are spread over everything after the master data
        eligible = valid - n_master
        self.p_malformed = self.n_malformed / eligible if eligible > 0 else 0.0

        # initial stock, sized to the demand expected over the trace
        units_per_order = _mean_index(LINES_CUM, (1, 2, 3, 4)) * _mean_index(QTY_CUM, (1, 2, 3, 5))
        demand_units = self.n_normal * units_per_order
        self.on_hand: dict[int, int] = {}
        self.seq: dict[int, int] = {}
        nn = self.n_nodes
        for s in range(n):
            f = 0.1 if rng.random() < 0.1 else rng.uniform(0.5, 3.0)
            tot = demand_units * self.pop[s] * f + rng.randint(0, 8)
            for d in range(self.n_dc):
                q = 0 if rng.random() < 0.08 else round(tot * self.stock_share[d] * rng.uniform(0.5, 1.5))
                self.on_hand[s * nn + d] = q
                self.seq[s * nn + d] = rng.randint(1, 5000)
            for x in self.extra_nodes[s]:
                self.on_hand[s * nn + x] = rng.randint(0, 12) if x in self.store_idx else rng.randint(20, 200)
                self.seq[s * nn + x] = rng.randint(1, 500)
        # the flash sale was pre-stocked at the two douyin DCs, but not for all of it
        spike_units = self.n_spike * SPIKE_HOT_P * 1.3
        for i, s in enumerate(self.hot):
            share = self.hot_cum[i] - (self.hot_cum[i - 1] if i else 0.0)
            for d in (0, 1):
                self.on_hand[s * nn + d] += round(spike_units * share * 0.35 * rng.uniform(0.8, 1.2))
        self.policies = []
        for s, d in self.policy_pairs:
            oh = self.on_hand[s * nn + d]
            safety = round(oh * rng.uniform(0.03, 0.12))
            self.policies.append((s, d, safety, safety + round(oh * rng.uniform(0.1, 0.3)) + 1))
        self.n_snap0 = n_snap0

        # a pool of customer addresses and the nearest DC to each (where returns go)
        self.ship_to: list[ev.ShipTo] = []
        self.ship_to_dc: list[int] = []
        for _ in range(SHIP_TO_POOL):
            p = PROVINCES[bisect(prov_cum, rng.random())]
            lat = round(p[2] + rng.gauss(0.0, 0.25), 3)
            lon = round(p[3] + rng.gauss(0.0, 0.25), 3)
            self.ship_to.append(ev.ShipTo(region=p[0], lat=lat, lon=lon))
            best = min(range(self.n_dc),
                       key=lambda d: (DCS[d][2] - lat) ** 2 + ((DCS[d][3] - lon) * math.cos(math.radians(lat))) ** 2)
            self.ship_to_dc.append(best)
        self.store_ship_to = [
            ev.ShipTo(region=nodes[i].region, lat=nodes[i].lat, lon=nodes[i].lon) for i in self.store_idx
        ]

    @staticmethod
    def _events_per_order(weight_col: int) -> float:
        ws = [c[weight_col] for c in CHANNELS]
        tot = sum(ws)
        unpaid = sum(w * (1 - c[4]) for w, c in zip(ws, CHANNELS)) / tot
        paid_later = unpaid * (P_PAY_ONTIME + P_PAY_LATE)
        eventually_paid = 1 - unpaid * (1 - P_PAY_ONTIME - P_PAY_LATE)
        return 1 + P_RESEND + P_CANCEL + paid_later + P_RETURN * eventually_paid * (1 - P_CANCEL)


def check_scenario(scenario: Scenario) -> None:
    """Raises ValueError with a readable reason when the scenario cannot be generated."""
    _Plan(scenario)


def generate(scenario: Scenario) -> Iterator[bytes]:
    """Yields one JSON line (bytes, no trailing newline) per message, in event-time order."""
    plan = _Plan(scenario)
    rng = plan.rng
    rnd = rng.random
    randint = rng.randint
    uniform = rng.uniform
    heap: list = []
    push = heapq.heappush
    pop = heapq.heappop
    encode = msgspec.json.Encoder().encode
    Ts = BASE_TIME
    td = timedelta

    nn = plan.n_nodes
    sku_ids = plan.sku_ids
    node_ids = [n.id for n in plan.nodes]
    node_index = {nid: i for i, nid in enumerate(node_ids)}
    sku_index = {sid: i for i, sid in enumerate(sku_ids)}
    by_rank = plan.by_rank
    zipf_cum = plan.zipf_cum
    n_sku = len(sku_ids)
    on_hand = plan.on_hand
    seqs = plan.seq
    line_ids = [str(i) for i in range(1, 7)]
    ch_ids = [c[0] for c in CHANNELS]
    ch_prefix = [c[1] for c in CHANNELS]
    ch_paid = [c[4] for c in CHANNELS]
    normal_cum = _cum([c[2] for c in CHANNELS])
    spike_cum = _cum([c[3] for c in CHANNELS])
    ttl_ms = plan.ttl_ms
    ship_pool = plan.ship_to
    ship_dc = plan.ship_to_dc
    store_idx = plan.store_idx
    store_ship_to = plan.store_ship_to
    n_stores = len(store_idx)
    hot, hot_cum = plan.hot, plan.hot_cum
    OrderCreated, OrderLine = ev.OrderCreated, ev.OrderLine
    OrderPaid, OrderCancelled, OrderReturned = ev.OrderPaid, ev.OrderCancelled, ev.OrderReturned
    StockSnapshot, StockAdjusted = ev.StockSnapshot, ev.StockAdjusted
    SupplyInbound, SupplyReceived = ev.SupplyInbound, ev.SupplyReceived
    order_nulls = _ORDER_NULLS
    pickup_null = order_nulls[0]
    hold_null = order_nulls[1]

    counter = 0  # event ids
    order_no = 100_000
    supply_no = 7_000
    hseq = 0  # heap tie-breaker: FIFO among equal times
    cache_t = -1
    cache = (Ts, b"", b"")

    def stamp(t: int):
        """(datetime, msgspec's encoding of it, the same with milliseconds)."""
        nonlocal cache_t, cache
        if t != cache_t:
            dt = Ts + td(milliseconds=t)
            old = encode(dt)
            new = old[:-5] + b'Z"' if len(old) == 29 else old[:-2] + b'.000Z"'
            cache_t, cache = t, (dt, old, new)
        return cache

    def finish(event, old: bytes, new: bytes, nulls=()) -> bytes:
        line = encode(event).replace(old, new, 1)
        for nb in nulls:
            line = line.replace(nb, b"", 1)
        return line

    def pick_sku() -> int:
        return by_rank[bisect(zipf_cum, rnd())]

    # -- orders ------------------------------------------------------------------------
    def make_order(t: int, spike: bool):
        """Builds an order.created at t, schedules its follow-ups; returns the line."""
        nonlocal counter, order_no, hseq
        r = rnd()
        ch = bisect(spike_cum if spike else normal_cum, r)
        if spike:
            nl = bisect(SPIKE_LINES_CUM, rnd()) + 1
        else:
            nl = bisect(LINES_CUM, rnd()) + 1
        if nl > n_sku:
            nl = n_sku
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
                    q = randint(4, 6)
            lines.append(OrderLine(line_id=line_ids[i], sku=sku_ids[s], qty=q))
        order_no += 1
        oid = ch_prefix[ch] + str(order_no)
        paid = rnd() < ch_paid[ch]
        if ch == _POS:
            k = int(rnd() * n_stores)
            node_i = store_idx[k]
            kw = dict(order_id=oid, channel="store-pos", lines=lines, ship_to=store_ship_to[k],
                      fulfillment="pickup", paid=paid, pickup_node=node_ids[node_i])
            nulls = (hold_null,)
        else:
            a = int(rnd() * SHIP_TO_POOL)
            node_i = ship_dc[a]
            kw = dict(order_id=oid, channel=ch_ids[ch], lines=lines, ship_to=ship_pool[a],
                      fulfillment="ship", paid=paid)
            nulls = order_nulls
        counter += 1
        dt, old, new = stamp(t)
        line = finish(OrderCreated(event_id=f"g-{counter}", ts=dt, **kw), old, new, nulls)

        # follow-ups
        pay_at = -1
        if not paid:
            u = rnd()
            ttl = ttl_ms[ch]
            if u < P_PAY_ONTIME:
                pay_at = t + randint(1500, max(2000, min(int(ttl * 0.8), 240_000)))
            elif u < P_PAY_ONTIME + P_PAY_LATE:
                pay_at = t + int(ttl * uniform(1.2, 3.0))
        cancelled = False
        if rnd() < P_CANCEL:
            cancelled = True
            c_at = t + int(math.exp(uniform(math.log(5_000), math.log(1_800_000))))
            if pay_at > c_at:
                pay_at = -1
            c_lines = None
            if len(lines) > 1 and rnd() < P_CANCEL_LINES:
                c_lines = sorted(rng.sample([ln.line_id for ln in lines], randint(1, len(lines) - 1)))
            hseq += 1
            push(heap, (c_at, hseq, _EMIT, OrderCancelled, dict(order_id=oid, line_ids=c_lines)))
        if pay_at >= 0:
            hseq += 1
            push(heap, (pay_at, hseq, _EMIT, OrderPaid, dict(order_id=oid)))
        if rnd() < P_RESEND:
            hseq += 1
            push(heap, (t + randint(1_000, 120_000), hseq, _EMIT, OrderCreated, kw))
        if not cancelled and (paid or pay_at >= 0) and rnd() < P_RETURN:
            ln = lines[int(rnd() * len(lines))]
            r_at = max(t, pay_at) + int(math.exp(uniform(math.log(1_200_000), math.log(21_600_000))))
            hseq += 1
            push(heap, (r_at, hseq, _EMIT, OrderReturned,
                        dict(order_id=oid, line_id=ln.line_id, sku=ln.sku, node=node_ids[node_i],
                             qty=randint(1, ln.qty), restock=rnd() < P_RESTOCK)))
        return line

    # -- supply ------------------------------------------------------------------------
    def supply_tick(t: int) -> bytes:
        nonlocal counter, supply_no, hseq
        s = by_rank[bisect(zipf_cum, rnd())]
        extra = plan.extra_nodes[s]
        if extra and rnd() < 0.2:
            node = extra[int(rnd() * len(extra))]
        else:
            node = int(rnd() * plan.n_dc)
        key = s * nn + node
        cur = on_hand[key]
        dt, old, new = stamp(t)
        counter += 1
        eid = f"g-{counter}"
        u = rnd()
        if u < P_SNAP:
            last = seqs[key]
            if rnd() < P_STALE:  # a late, out-of-order count: ignored by the engine
                e = StockSnapshot(event_id=eid, ts=dt, sku=sku_ids[s], node=node_ids[node],
                                  on_hand=max(0, cur + randint(-5, 10)), seq=last - randint(0, 3))
            else:
                if rnd() < P_DRIFT:  # the physical count drifted from the books
                    cur = max(0, cur + randint(-3, 3))
                    on_hand[key] = cur
                last += randint(1, 5)
                seqs[key] = last
                e = StockSnapshot(event_id=eid, ts=dt, sku=sku_ids[s], node=node_ids[node],
                                  on_hand=cur, seq=last)
            return finish(e, old, new)
        if u < P_SNAP + P_ADJ:
            v = rnd()
            if v < 0.1 and cur >= 5:
                reason, delta = ("write_off" if rnd() < 0.6 else "quality_hold"), -round(cur * uniform(0.3, 0.7))
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
            on_hand[key] = cur + delta
            return finish(StockAdjusted(event_id=eid, ts=dt, sku=sku_ids[s], node=node_ids[node],
                                        delta=delta, reason=reason), old, new)
        # inbound, at a DC or a distributor (transfers to a store now and then)
        v = rnd()
        if v < 0.55:
            kind, prefix, lead = "in_transit", "TR-", randint(3_600_000, 43_200_000)
        elif v < 0.7:
            kind, prefix, lead = "production", "MO-", randint(86_400_000, 432_000_000)
        else:
            kind, prefix, lead = "purchase_order", "PO-", randint(172_800_000, 864_000_000)
        lead = (t + lead) // 60_000 * 60_000 - t  # ETAs are whole minutes
        base = sum(on_hand.get(s * nn + d, 0) for d in range(plan.n_dc))
        qty = max(6, round(base * uniform(0.1, 0.5)))
        if node >= plan.n_dc and node in store_idx:
            qty = randint(2, 12)
            kind, prefix = "in_transit", "TR-"
        supply_no += 1
        sid = f"{prefix}{supply_no}"
        eta_dt, eta_old, eta_new = stamp(t + lead)
        e = SupplyInbound(event_id=eid, ts=dt, supply_id=sid, sku=sku_ids[s], node=node_ids[node],
                          qty=qty, eta=eta_dt, kind=kind)
        line = encode(e).replace(eta_old, eta_new, 1)
        dt, old, new = stamp(t)
        line = line.replace(old, new, 1)
        if rnd() < P_RECEIVED:
            got = qty if rnd() >= P_PARTIAL else max(1, round(qty * uniform(0.5, 0.95)))
            at = t + max(60_000, int(lead * uniform(0.85, 1.25)))
            hseq += 1
            push(heap, (at, hseq, _EMIT, SupplyReceived,
                        dict(supply_id=sid, sku=sku_ids[s], node=node_ids[node], qty=got)))
        return line

    # -- malformed lines -------------------------------------------------------------
    bad_kinds = ("truncated", "unknown_type", "missing_field", "wrong_type", "qty_zero",
                 "empty_lines", "pickup_without_node")

    def malformed(t: int) -> bytes:
        nonlocal counter, order_no
        dt, old, new = stamp(t)
        ts_text = new[1:-1].decode()
        counter += 1
        order_no += 1
        s = pick_sku()
        ch = bisect(normal_cum, rnd())
        if ch == _POS:
            ch = 0
        a = int(rnd() * SHIP_TO_POOL)
        msg = msgspec.to_builtins(OrderCreated(
            event_id=f"g-{counter}", ts=dt, order_id=ch_prefix[ch] + str(order_no),
            channel=ch_ids[ch], lines=[OrderLine(line_id="1", sku=sku_ids[s], qty=randint(1, 3))],
            ship_to=ship_pool[a], fulfillment="ship", paid=rnd() < 0.6))
        msg["ts"] = ts_text
        del msg["pickup_node"], msg["hold_id"]
        kind = bad_kinds[int(rnd() * len(bad_kinds))]
        if kind == "truncated":
            raw = msgspec.json.encode(msg)
            return raw[: randint(len(raw) // 3, len(raw) - 2)]
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

    # -- the stream ------------------------------------------------------------------
    # master data at t0
    dt, old, new = stamp(0)
    for node in plan.nodes:
        counter += 1
        yield finish(ev.NodeUpserted(event_id=f"g-{counter}", ts=dt, node=node), old, new)
    for channel in plan.channels:
        counter += 1
        yield finish(ev.ChannelUpserted(event_id=f"g-{counter}", ts=dt, channel=channel), old, new,
                     _NULLS[ev.ChannelUpserted] if channel.wos_weeks is None else ())
    for s, d, safety, rop in plan.policies:
        counter += 1
        yield finish(ev.PolicyUpserted(event_id=f"g-{counter}", ts=dt, sku=sku_ids[s],
                                       node=node_ids[d], safety_stock=safety, reorder_point=rop),
                     old, new, _NULLS[ev.PolicyUpserted][:1])

    p_bad = plan.p_malformed
    bad_acc = 0.0
    bad_next = uniform(0.3, 1.7) if p_bad else math.inf

    # initial snapshots at t0 + 60 s (duplicates and malformed lines may follow any of them)
    dt, old, new = stamp(SNAPSHOT_MS)
    for s in range(n_sku):
        for node in list(range(plan.n_dc)) + plan.extra_nodes[s]:
            key = s * nn + node
            counter += 1
            line = finish(StockSnapshot(event_id=f"g-{counter}", ts=dt, sku=sku_ids[s],
                                        node=node_ids[node], on_hand=on_hand[key], seq=seqs[key]),
                          old, new)
            yield line
            if rnd() < P_DUP:
                yield line
            bad_acc += p_bad
            if bad_acc >= bad_next:
                bad_acc -= 1.0
                bad_next = uniform(0.3, 1.7)
                yield malformed(SNAPSHOT_MS)

    # three arrival processes, as sorted uniform times over their windows
    span = plan.span_ms
    left = {_NORMAL: plan.n_normal, _SPIKE: plan.n_spike, _SUPPLY: plan.n_supply}
    window = {
        _NORMAL: (ORDER_START_MS, span),
        _SPIKE: (plan.spike_start, SPIKE_WINDOW_MS),
        _SUPPLY: (ORDER_START_MS, span),
    }
    frac = {_NORMAL: 0.0, _SPIKE: 0.0, _SUPPLY: 0.0}

    def next_tick(kind: int) -> None:
        nonlocal hseq
        n_left = left[kind]
        if n_left <= 0:
            return
        left[kind] = n_left - 1
        x = frac[kind]
        x = 1.0 - (1.0 - x) * (1.0 - rnd()) ** (1.0 / n_left)
        frac[kind] = x
        start, width_ms = window[kind]
        hseq += 1
        push(heap, (start + int(x * width_ms), hseq, kind, None, None))

    for kind in (_NORMAL, _SPIKE, _SUPPLY):
        next_tick(kind)

    while heap:
        t, _, kind, a, b = pop(heap)
        if kind == _EMIT:
            counter += 1
            dt, old, new = stamp(t)
            e = a(event_id=f"g-{counter}", ts=dt, **b)
            line = encode(e).replace(old, new, 1)
            if a is SupplyReceived:
                k2 = sku_index[b["sku"]] * nn + node_index[b["node"]]
                on_hand[k2] = on_hand.get(k2, 0) + b["qty"]
                seqs.setdefault(k2, 1)
            elif a is OrderCreated:
                if b["fulfillment"] == "pickup":
                    line = line.replace(hold_null, b"", 1)
                else:
                    line = line.replace(pickup_null, b"", 1).replace(hold_null, b"", 1)
            elif a is OrderCancelled:
                if b["line_ids"] is None:
                    line = line.replace(b',"line_ids":null', b"", 1)
            elif a is OrderReturned and b["restock"]:
                k2 = sku_index[b["sku"]] * nn + node_index[b["node"]]
                on_hand[k2] = on_hand.get(k2, 0) + b["qty"]
                seqs.setdefault(k2, 1)
        elif kind == _NORMAL:
            line = make_order(t, False)
            next_tick(_NORMAL)
        elif kind == _SPIKE:
            line = make_order(t, True)
            next_tick(_SPIKE)
        elif kind == _SUPPLY:
            line = supply_tick(t)
            next_tick(_SUPPLY)
        else:  # an exact duplicate of a line already sent
            yield a
            continue
        yield line
        if rnd() < P_DUP:
            hseq += 1
            push(heap, (t, hseq, _DUP, line, None))
        bad_acc += p_bad
        if bad_acc >= bad_next:
            bad_acc -= 1.0
            bad_next = uniform(0.3, 1.7)
            yield malformed(t)


def write_jsonl(scenario: Scenario, out: BinaryIO, on_written=None) -> int:
    """Writes the lines with b"\\n" separators; returns the count written. `on_written(n)`
    hears of every block of lines written (progress)."""
    n = 0
    buf: list[bytes] = []
    write = out.write
    for line in generate(scenario):
        buf.append(line)
        if len(buf) >= 4096:
            write(b"\n".join(buf) + b"\n")
            n += len(buf)
            if on_written is not None:
                on_written(len(buf))
            buf.clear()
    if buf:
        write(b"\n".join(buf) + b"\n")
        n += len(buf)
        if on_written is not None:
            on_written(len(buf))
    return n
