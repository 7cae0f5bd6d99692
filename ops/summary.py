"""Decision-quality summary of a replay, read back from its input and its output files."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import msgspec

from stockflow.connectors.files import open_trace
from stockflow.state.dedup import digest
from stockflow.state.events import (
    ChannelUpserted,
    ClockTick,
    InputEvent,
    NodeUpserted,
    OrderCreated,
    TransferShipped,
    check_rules,
)
from stockflow.state.geo import haversine_km
from stockflow.state.outputs import DispatchAllocate, OutputEvent, ReplenishmentRequested

from .channel_figures import ChannelFigures, channel_figures
from .oversell import OVERSELL_REASONS
from .oversell import oversold as is_oversold
from .stock_on_hand import StockOnHand

_DECODE_OUT = msgspec.json.Decoder(OutputEvent).decode
_DECODE_IN = msgspec.json.Decoder(InputEvent).decode

FINAL = ("allocated", "shipped", "returned", "held", "backordered", "rejected", "expired", "cancelled")


class Summary(msgspec.Struct, kw_only=True):
    events: int
    orders: int
    lines: int
    final_status: dict[str, int]
    split_rate: float  # allocated lines served from more than one node
    cross_region_rate: float  # allocated units served from another region than the ship-to's
    oversold_paid_lines: int  # paid lines rejected for lack of stock (ops/oversell.py)
    shortage_alerts: int
    transfers_requested: int  # replenishment.requested with a from_node (rebalancing included)
    transfer_units: int
    dead_letters: int
    duplicates: int  # input events the engine drops: an event_id again, or a resent order
    outputs: dict[str, int]
    seconds: float | None = None
    events_per_s: float | None = None
    # Where the allocations went (stockflow whatif compares these between policies).
    allocated_lines: int = 0  # lines with units allocated at the end (net of releases)
    fill_rate: float = 0.0  # allocated_lines / lines
    mean_distance_km: float = 0.0  # ship-to to node, per allocated unit (great circle)
    shipments_per_order: float = 0.0  # distinct nodes per order with an allocation
    rejected_by_reason: dict[str, int] = {}  # lines whose final status is rejected
    # Per channel: fill rate, and units protected for it that others sold before it ran out.
    by_channel: dict[str, ChannelFigures] = {}
    slow_mover_alerts: int = 0  # alerts of kind slow_mover: one per fall of a SKU's sales
    slow_mover_skus: int = 0  # the SKUs they name
    # What the stock cost (stock_on_hand.py; whatif compares these, in closed loop above all)
    mean_units_on_hand: float = 0.0  # time-weighted over event time, all nodes
    stockout_lines: int = 0  # lines ever rejected or backordered for want of stock
    inventory_turns: float = 0.0  # units shipped per mean unit on hand, per year
    units_purchased: int = 0  # units of the engine's purchase requests
    units_transferred: int = 0  # units the input says were shipped between nodes


def read_outputs(out_dir: str | Path, stream: str) -> list:
    path = Path(out_dir) / f"{stream}.jsonl"
    if not path.exists():
        return []
    with open(path, "rb") as f:
        return [_DECODE_OUT(line) for line in f if line.strip()]


class Duplicates:
    """The engine's duplicate rule, replayed over the input file: an `event_id` seen again on
    the same content, or an `order.created` resent for a known order with the same lines, is
    a true repeat (counted); an id reused on other content, or a resend with other lines, is
    refused (a dead letter), not counted.

    The engine remembers ids for `dedup_window_s` and orders for `order_retention_s`; a file
    whose repeats lie further apart than that would count more here than the engine drops.
    """

    def __init__(self) -> None:
        self.event_ids: dict[str, int] = {}  # id -> its content's digest
        self.orders: dict[str, int] = {}  # order id -> its lines' digest
        self.count = 0

    def drop(self, ev) -> bool:
        """Whether the engine does not apply `ev` (a true repeat, or a refused one);
        remembers it if it does."""
        if type(ev) is ClockTick or check_rules(ev) is not None:
            return False  # ticks are never deduplicated; rule breakers are dead letters
        content = digest(ev)
        known = self.event_ids.get(ev.event_id)
        if known is not None:
            self.count += known == content
            return True
        self.event_ids[ev.event_id] = content
        if type(ev) is OrderCreated:
            lines, had = digest(ev.lines), self.orders.get(ev.order_id)
            if had is not None:
                self.count += had == lines
                return True
            self.orders[ev.order_id] = lines
        return False


def summarize(events_path: str, out_dir: str, seconds: float | None = None) -> Summary:
    node_region: dict[str, str] = {}
    node_at: dict[str, tuple[float, float]] = {}
    ship_region: dict[tuple[str, str], str] = {}
    line_channel: dict[tuple[str, str], str] = {}
    wos_weeks: dict[str, float | None] = {}
    ship_at: dict[str, tuple[float, float]] = {}  # order id -> ship-to (lat, lon)
    orders: set[str] = set()
    duplicates = Duplicates()
    stock = StockOnHand()
    transferred = 0
    events = 0
    with open_trace(events_path) as f:
        for raw in f:
            if not raw.strip():
                continue
            events += 1
            try:
                ev = _DECODE_IN(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                continue
            if duplicates.drop(ev):
                continue
            if type(ev) is not ClockTick and check_rules(ev) is None:  # a dead letter moves nothing
                stock.apply(ev)
            if type(ev) is TransferShipped:
                transferred += ev.qty
            elif type(ev) is NodeUpserted:
                node_region[ev.node.id] = ev.node.region
                node_at[ev.node.id] = (ev.node.lat, ev.node.lon)
            elif type(ev) is ChannelUpserted:
                wos_weeks[ev.channel.id] = ev.channel.wos_weeks
            elif type(ev) is OrderCreated and ev.order_id not in orders:
                orders.add(ev.order_id)
                ship_at[ev.order_id] = (ev.ship_to.lat, ev.ship_to.lon)
                for line in ev.lines:
                    ship_region[(ev.order_id, line.line_id)] = ev.ship_to.region
                    line_channel[(ev.order_id, line.line_id)] = ev.channel

    last: dict[tuple[str, str], object] = {}
    oversold = 0
    stockouts: set[tuple[str, str]] = set()
    for st in read_outputs(out_dir, "order-status"):
        last[(st.order_id, st.line_id)] = st
        oversold += is_oversold(st)
        if st.status in ("rejected", "backordered") and st.reason in OVERSELL_REASONS:
            stockouts.add((st.order_id, st.line_id))
    final = Counter(st.status for st in last.values())
    rejected = Counter(st.reason or "unknown" for st in last.values() if st.status == "rejected")

    net: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    dispatch = read_outputs(out_dir, "dispatch")
    for cmd in dispatch:
        sign = 1 if isinstance(cmd, DispatchAllocate) else -1
        net[(cmd.order_id, cmd.line_id)][cmd.node] += sign * cmd.qty
    allocated_lines = split = units = cross = 0
    allocated: set[tuple[str, str]] = set()
    km = 0.0
    shipments: dict[str, set[str]] = defaultdict(set)  # order id -> nodes it ships from
    for key, by_node in net.items():
        nodes = {n: q for n, q in by_node.items() if q > 0}
        if not nodes:
            continue
        allocated_lines += 1
        allocated.add(key)
        split += len(nodes) > 1
        shipments[key[0]].update(nodes)
        for node, qty in nodes.items():
            units += qty
            if node_region.get(node) != ship_region.get(key):
                cross += qty
            km += qty * _distance(ship_at.get(key[0]), node_at.get(node))

    counts = {}
    for stream in ("dispatch", "order-status", "replenishment", "availability", "alerts", "dead-letter"):
        path = Path(out_dir) / f"{stream}.jsonl"
        counts[stream] = sum(1 for _ in open(path, "rb")) if path.exists() else 0
    alerts = read_outputs(out_dir, "alerts")
    requests = [r for r in read_outputs(out_dir, "replenishment")
                if type(r) is ReplenishmentRequested]
    transfers = [r for r in requests if r.from_node is not None]
    return Summary(
        events=events,
        orders=len(orders),
        lines=len(ship_region),
        final_status={s: final.get(s, 0) for s in FINAL},
        split_rate=split / allocated_lines if allocated_lines else 0.0,
        cross_region_rate=cross / units if units else 0.0,
        oversold_paid_lines=oversold,
        shortage_alerts=sum(1 for a in alerts if a.kind == "shortage"),
        transfers_requested=len(transfers),
        transfer_units=sum(r.qty for r in transfers),
        dead_letters=counts["dead-letter"],
        duplicates=duplicates.count,
        outputs=counts,
        seconds=seconds,
        events_per_s=events / seconds if seconds else None,
        allocated_lines=allocated_lines,
        fill_rate=allocated_lines / len(ship_region) if ship_region else 0.0,
        mean_distance_km=km / units if units else 0.0,
        shipments_per_order=(sum(len(n) for n in shipments.values()) / len(shipments)
                             if shipments else 0.0),
        rejected_by_reason=dict(sorted(rejected.items())),
        by_channel=channel_figures(line_channel, allocated, wos_weeks, alerts),
        slow_mover_alerts=sum(1 for a in alerts if a.kind == "slow_mover"),
        slow_mover_skus=len({a.sku for a in alerts if a.kind == "slow_mover"}),
        mean_units_on_hand=stock.mean_units,
        stockout_lines=len(stockouts),
        inventory_turns=stock.turns,
        units_purchased=sum(r.qty for r in requests if r.from_node is None),
        units_transferred=transferred,
    )


def _distance(ship_to: tuple[float, float] | None, node: tuple[float, float] | None) -> float:
    """Kilometres from a ship-to to a node; 0 where either is unknown to the input file."""
    if ship_to is None or node is None:
        return 0.0
    return haversine_km(ship_to[0], ship_to[1], node[0], node[1])
