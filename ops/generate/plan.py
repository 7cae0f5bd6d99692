"""What is decided before the first line: nodes, channels, SKUs and their popularity, the hot
SKUs of the flash sale, the budget of lines, the opening stock and the customers.

Every draw comes from the scenario's one `random.Random(seed)`, in the order of `Plan`'s
constructor; the stream goes on drawing from the same generator after it.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from random import Random

import msgspec

from stockflow.state import events as ev

from .budget import Budget, budget
from .scenario import POLICY_SHARE, SHIP_TO_POOL, ZIPF_S, Scenario, cumulative
from .stock import StockBook, opening_stock, policies
from .world import DCS, DISTRIBUTORS, PROVINCE_CUM, PROVINCES


class Plan:
    """Everything decided before the first line. Nodes, SKUs and channels are referred to by
    their index; nodes are the DCs first (`n_dc` of them), then stores, then distributors.
    A plan makes one trace: its `rng` and its `stock` move on as the lines are made."""

    def __init__(self, sc: Scenario) -> None:
        if sc.events <= 0 or sc.skus <= 0 or sc.stores <= 0:
            raise ValueError("events, skus and stores must be positive")
        if not 0.0 <= sc.malformed_rate < 0.5:
            raise ValueError("malformed_rate must be in [0, 0.5)")
        self.rng = rng = random.Random(sc.seed)
        self.nodes, self.store_idx, dist_idx = _nodes(rng, sc.stores)
        self.n_nodes = len(self.nodes)
        self.n_dc = len(DCS)
        self.stock_share = [dc[4] for dc in DCS]
        self.channels = _channels(self.nodes, self.store_idx)
        self.ttl_ms = [int(c.hold_ttl_s * 1000) for c in self.channels]

        # SKUs: sku_ids[s], popularity pop[s]; by_rank[r] is the SKU of rank r (0 = best seller)
        self.sku_ids, self.by_rank, self.zipf_cum, self.pop = _popularity(rng, sc.skus)
        self.hot, self.hot_cum = _hot_skus(rng, self.by_rank)
        self.extra_nodes = _extra_nodes(rng, sc.skus, self.store_idx, dist_idx)
        policy_pairs = [
            (s, d) for s in range(sc.skus) for d in range(self.n_dc) if rng.random() < POLICY_SHARE
        ]
        self.n_snap0 = sc.skus * self.n_dc + sum(len(x) for x in self.extra_nodes)
        n_master = self.n_nodes + len(self.channels) + len(policy_pairs)
        self.n_opening = n_master + self.n_snap0  # lines before the first order
        self.budget: Budget = budget(sc, n_master, self.n_snap0)

        self.stock: StockBook = opening_stock(rng, self)
        self.policies = policies(rng, policy_pairs, self.stock)
        self.ship_to, self.ship_to_dc = _customers(rng)
        self.store_ship_to = [
            ev.ShipTo(region=self.nodes[i].region, lat=self.nodes[i].lat, lon=self.nodes[i].lon)
            for i in self.store_idx
        ]


def check_scenario(scenario: Scenario) -> None:
    """Raises ValueError with a readable reason when the scenario cannot be generated."""
    Plan(scenario)


# A catalogue cut down to fit a small trace leaves at least this share of it to orders and
# supply: master data and opening counts take about 12 lines per SKU.
OPENING_SHARE = 0.5


def fit_catalogue(scenario: Scenario) -> Scenario:
    """The scenario as given if it can be generated (its bytes unchanged), else with as many
    SKUs as keep master data and opening counts within `OPENING_SHARE` of its events, so
    `--events 5000` works without `--skus`; a scenario no SKU count fits is given back as is
    (generating it raises the readable reason)."""
    if _fits(scenario, 1.0):
        return scenario
    low, high = 0, scenario.skus  # _fits(low) holds (or low is 0), _fits(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        if _fits(msgspec.structs.replace(scenario, skus=mid), OPENING_SHARE):
            low = mid
        else:
            high = mid
    return msgspec.structs.replace(scenario, skus=low) if low else scenario


def _fits(scenario: Scenario, opening_share: float) -> bool:
    try:
        plan = Plan(scenario)
    except ValueError:
        return False
    return plan.n_opening <= opening_share * scenario.events


def _nodes(rng: Random, stores: int) -> tuple[list[ev.Node], list[int], list[int]]:
    """(nodes, indexes of the stores, indexes of the distributors): the DCs, `stores` stores
    spread over provinces (all pick up, some ship), then one or two distributors."""
    nodes = [
        ev.Node(id=nid, kind="dc", region=region, lat=lat, lon=lon, can_ship=True,
                can_pickup=False, ship_cost=round(rng.uniform(5.5, 7.5), 1))
        for nid, region, lat, lon, _ in DCS
    ]
    per_code: dict[str, int] = {}
    store_idx: list[int] = []
    for i in range(stores):
        p = PROVINCES[i] if i < len(PROVINCES) else PROVINCES[bisect(PROVINCE_CUM, rng.random())]
        per_code[p[1]] = per_code.get(p[1], 0) + 1
        store_idx.append(len(nodes))
        nodes.append(
            ev.Node(id=f"ST-{p[1]}-{per_code[p[1]]:02d}", kind="store", region=p[0],
                    lat=round(p[2] + rng.uniform(-0.15, 0.15), 3),
                    lon=round(p[3] + rng.uniform(-0.15, 0.15), 3),
                    can_ship=rng.random() < 0.35, can_pickup=True,
                    ship_cost=round(rng.uniform(8.0, 12.0), 1))
        )
    dist_idx: list[int] = []
    for nid, region, lat, lon in DISTRIBUTORS[: rng.randint(1, 2)]:
        dist_idx.append(len(nodes))
        nodes.append(
            ev.Node(id=nid, kind="distributor", region=region, lat=lat, lon=lon,
                    can_ship=True, can_pickup=False, ship_cost=round(rng.uniform(7.0, 9.0), 1))
        )
    return nodes, store_idx, dist_idx


def _channels(nodes: list[ev.Node], store_idx: list[int]) -> list[ev.Channel]:
    """The six channels, in the order of world.CHANNELS, each with its own policy."""
    dc_ids = [n.id for n in nodes[: len(DCS)]]
    store_ids = [nodes[i].id for i in store_idx]
    shipping_stores = [nodes[i].id for i in store_idx if nodes[i].can_ship]
    return [
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


def _popularity(rng: Random, n: int) -> tuple[list[str], list[int], list[float], list[float]]:
    """(SKU ids, SKU index by rank, cumulative Zipf shares by rank, share of demand per SKU)."""
    width = max(5, len(str(n)))
    sku_ids = [f"SKU-{i:0{width}d}" for i in range(1, n + 1)]
    by_rank = list(range(n))
    rng.shuffle(by_rank)
    w = [1.0 / (r + 1) ** ZIPF_S for r in range(n)]
    total_w = sum(w)
    pop = [0.0] * n
    for r, s in enumerate(by_rank):
        pop[s] = w[r] / total_w
    return sku_ids, by_rank, cumulative(w), pop


def _hot_skus(rng: Random, by_rank: list[int]) -> tuple[list[int], list[float]]:
    """The flash sale's 3-5 SKUs, from ranks 10-120 (popular, not the best sellers), and the
    cumulative shares of its lines between them."""
    n = len(by_rank)
    k = min(n, rng.randint(3, 5))
    lo, hi = min(10, n - k), min(n, 120)
    hot = [by_rank[r] for r in rng.sample(range(lo, max(hi, lo + k)), k)]
    return hot, cumulative([1.0 / (i + 1) ** 0.8 for i in range(k)])


def _extra_nodes(rng: Random, n: int, store_idx: list[int], dist_idx: list[int]) -> list[list[int]]:
    """Per SKU, the stores (0-3) and now and then a distributor that hold it beside the DCs."""
    out = []
    for _ in range(n):
        extra = rng.sample(store_idx, min(len(store_idx), rng.randint(0, 3)))
        if dist_idx and rng.random() < 0.1:
            extra.append(rng.choice(dist_idx))
        out.append(extra)
    return out


def _customers(rng: Random) -> tuple[list[ev.ShipTo], list[int]]:
    """A pool of customer addresses by online demand per province, and the DC nearest each
    (where its returns go)."""
    ship_to: list[ev.ShipTo] = []
    nearest_dc: list[int] = []
    for _ in range(SHIP_TO_POOL):
        p = PROVINCES[bisect(PROVINCE_CUM, rng.random())]
        lat = round(p[2] + rng.gauss(0.0, 0.25), 3)
        lon = round(p[3] + rng.gauss(0.0, 0.25), 3)
        ship_to.append(ev.ShipTo(region=p[0], lat=lat, lon=lon))
        nearest_dc.append(_nearest_dc(lat, lon))
    return ship_to, nearest_dc


def _nearest_dc(lat: float, lon: float) -> int:
    """The index of the DC nearest to (lat, lon), on a flat map scaled at that latitude."""
    cos_lat = math.cos(math.radians(lat))
    return min(range(len(DCS)),
               key=lambda d: (DCS[d][2] - lat) ** 2 + ((DCS[d][3] - lon) * cos_lat) ** 2)
