"""Builders for unit tests: input events with automatic ids and times, and an engine to feed.

`Script` makes the msgspec Structs of `stockflow.state.events` with event ids `e-1`, `e-2`,
... and timestamps that start at `T0` and go up by one second per event, unless a test passes
`ts=` (seconds after T0, or a datetime) or `event_id=` itself. `Sim` wraps the pure `Engine`:
feed it events, read back the outputs they caused and the books they left.

    sim = Sim()
    sim.feed(sim.ev.node("DC-SH", region="Shanghai", lat=31.23, lon=121.47))
    out = sim.feed(sim.ev.order("O1", [("K1", 2)], channel="web"))
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec

from stockflow.state.book import SkuBook
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import (
    Channel,
    ChannelUpserted,
    Node,
    NodeUpserted,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderPaid,
    OrderReturned,
    PolicyUpserted,
    ShipmentConfirmed,
    ShipTo,
    StockAdjusted,
    StockSnapshot,
    StockSnapshotApproved,
    StockSnapshotRejected,
    SupplyInbound,
    SupplyReceived,
    SupplyTerms,
    TransferCancelled,
    TransferShipped,
)
from stockflow.state.outputs import (
    Alert,
    AvailabilityChanged,
    DispatchAllocate,
    DispatchRelease,
    OrderStatus,
    ReplenishmentRequested,
)

T0 = datetime(2026, 11, 11, tzinfo=timezone.utc)
DAY = 86400.0

# Places used across the tests (lat, lon).
SHANGHAI = (31.23, 121.47)
HANGZHOU = (30.27, 120.15)
GUANGZHOU = (23.13, 113.26)
SHENZHEN = (22.54, 114.06)
BEIJING = (39.91, 116.40)
CHENGDU = (30.57, 104.07)


class Script:
    """Makes input events: ids e-1, e-2, ...; each ts one second after the previous one."""

    def __init__(self, start: datetime = T0, step_s: float = 1.0) -> None:
        self.start = start
        self.step = timedelta(seconds=step_s)
        self.now = start - self.step
        self.count = 0

    # -- ids and time -------------------------------------------------------------------

    def at(self, seconds: float) -> datetime:
        """The time `seconds` after the start."""
        return self.start + timedelta(seconds=seconds)

    def wait(self, seconds: float) -> None:
        """Let time pass: the next event (without ts=) comes `seconds` + one step later."""
        self.now += timedelta(seconds=seconds)

    def _meta(self, ts, event_id) -> dict:
        if ts is None:
            self.now = self.now + self.step
        elif isinstance(ts, datetime):
            self.now = ts
        else:
            self.now = self.at(ts)
        self.count += 1
        return {"event_id": event_id or f"e-{self.count}", "ts": self.now}

    # -- master data --------------------------------------------------------------------

    def node(self, id: str, *, region: str = "Shanghai", at: tuple[float, float] = SHANGHAI,
             kind: str = "dc", can_ship: bool = True, can_pickup: bool = False,
             ship_cost: float | None = 5.0, active: bool = True,
             snapshot_guard_share: float | None = None, snapshot_guard_units: int | None = None,
             ts=None, event_id=None) -> NodeUpserted:
        return NodeUpserted(**self._meta(ts, event_id), node=Node(
            id=id, kind=kind, region=region, lat=at[0], lon=at[1], can_ship=can_ship,
            can_pickup=can_pickup, ship_cost=ship_cost, active=active,
            snapshot_guard_share=snapshot_guard_share, snapshot_guard_units=snapshot_guard_units,
        ))

    def channel(self, id: str = "web", nodes: list[str] | None = None, *,
                hold_ttl_s: float = 900, allow_split: bool = False, backorder: bool = False,
                supply: dict | None = None, wos_weeks: float | None = None, ts=None,
                event_id=None) -> ChannelUpserted:
        """`supply`: kind -> SupplyTerms, or kind -> (share, horizon_s) for short."""
        if supply is not None:
            supply = {kind: terms if isinstance(terms, SupplyTerms)
                      else SupplyTerms(share=terms[0], horizon_s=terms[1])
                      for kind, terms in supply.items()}
        return ChannelUpserted(**self._meta(ts, event_id), channel=Channel(
            id=id, nodes=nodes or ["*"], hold_ttl_s=hold_ttl_s, allow_split=allow_split,
            backorder=backorder, supply=supply, wos_weeks=wos_weeks,
        ))

    def policy(self, sku: str, node: str, *, safety_stock: int = 0,
               reorder_point: int | None = None, order_up_to: int | None = None,
               ts=None, event_id=None) -> PolicyUpserted:
        return PolicyUpserted(**self._meta(ts, event_id), sku=sku, node=node,
                              safety_stock=safety_stock, reorder_point=reorder_point,
                              order_up_to=order_up_to)

    # -- supply -------------------------------------------------------------------------

    def snapshot(self, sku: str, node: str, on_hand: int, seq: int | None = None, *,
                 ts=None, event_id=None) -> StockSnapshot:
        meta = self._meta(ts, event_id)
        return StockSnapshot(**meta, sku=sku, node=node, on_hand=on_hand,
                             seq=self.count if seq is None else seq)

    def approved(self, snapshot_event_id: str, *, ts=None,
                 event_id=None) -> StockSnapshotApproved:
        return StockSnapshotApproved(**self._meta(ts, event_id),
                                     snapshot_event_id=snapshot_event_id)

    def rejected(self, snapshot_event_id: str, *, ts=None,
                 event_id=None) -> StockSnapshotRejected:
        return StockSnapshotRejected(**self._meta(ts, event_id),
                                     snapshot_event_id=snapshot_event_id)

    def adjust(self, sku: str, node: str, delta: int, reason: str = "cycle_count", *,
               ts=None, event_id=None) -> StockAdjusted:
        return StockAdjusted(**self._meta(ts, event_id), sku=sku, node=node, delta=delta,
                             reason=reason)

    def inbound(self, supply_id: str, sku: str, node: str, qty: int, *, eta_s: float,
                kind: str = "in_transit", ts=None, event_id=None) -> SupplyInbound:
        """Inbound supply arriving `eta_s` seconds after this event's ts."""
        meta = self._meta(ts, event_id)
        return SupplyInbound(**meta, supply_id=supply_id, sku=sku, node=node, qty=qty,
                             eta=meta["ts"] + timedelta(seconds=eta_s), kind=kind)

    def received(self, supply_id: str, sku: str, node: str, qty: int, *,
                 ts=None, event_id=None) -> SupplyReceived:
        return SupplyReceived(**self._meta(ts, event_id), supply_id=supply_id, sku=sku,
                              node=node, qty=qty)

    def shipped(self, order_id: str, sku: str, node: str, qty: int, line_id: str = "1", *,
                ts=None, event_id=None) -> ShipmentConfirmed:
        return ShipmentConfirmed(**self._meta(ts, event_id), order_id=order_id,
                                 line_id=line_id, sku=sku, node=node, qty=qty)

    def transfer_shipped(self, command_id: str, sku: str, from_node: str, to_node: str,
                         qty: int, *, ts=None, event_id=None) -> TransferShipped:
        return TransferShipped(**self._meta(ts, event_id), command_id=command_id, sku=sku,
                               from_node=from_node, to_node=to_node, qty=qty)

    def transfer_cancelled(self, command_id: str, *, ts=None,
                           event_id=None) -> TransferCancelled:
        return TransferCancelled(**self._meta(ts, event_id), command_id=command_id)

    # -- demand -------------------------------------------------------------------------

    def order(self, order_id: str, lines: list[tuple[str, int]], *, channel: str = "web",
              paid: bool = False, region: str = "Shanghai",
              ship_to: tuple[float, float] = SHANGHAI, pickup_node: str | None = None,
              hold_id: str | None = None, ts=None, event_id=None) -> OrderCreated:
        """An order; `lines` are (sku, qty) with line ids "1", "2", ..."""
        return OrderCreated(
            **self._meta(ts, event_id), order_id=order_id, channel=channel,
            lines=[OrderLine(line_id=str(i), sku=sku, qty=qty)
                   for i, (sku, qty) in enumerate(lines, 1)],
            ship_to=ShipTo(region=region, lat=ship_to[0], lon=ship_to[1]),
            fulfillment="pickup" if pickup_node else "ship", pickup_node=pickup_node,
            paid=paid, hold_id=hold_id,
        )

    def paid(self, order_id: str, *, ts=None, event_id=None) -> OrderPaid:
        return OrderPaid(**self._meta(ts, event_id), order_id=order_id)

    def cancelled(self, order_id: str, line_ids: list[str] | None = None, *,
                  ts=None, event_id=None) -> OrderCancelled:
        return OrderCancelled(**self._meta(ts, event_id), order_id=order_id, line_ids=line_ids)

    def returned(self, order_id: str, sku: str, node: str, qty: int, line_id: str = "1", *,
                 restock: bool = True, ts=None, event_id=None) -> OrderReturned:
        return OrderReturned(**self._meta(ts, event_id), order_id=order_id, line_id=line_id,
                             sku=sku, node=node, qty=qty, restock=restock)


class Sim:
    """An engine, a script to make its events, and ways to look at what happened."""

    def __init__(self, **config) -> None:
        config.setdefault("buckets", 4)
        self.engine = Engine(EngineConfig(**config))
        self.ev = Script()

    def feed(self, *events) -> list:
        """Process the events as one batch; returns the outputs they caused."""
        return self.engine.process(list(events))

    def feed_each(self, *events) -> list:
        """Process the events one batch each; returns all the outputs."""
        out = []
        for event in events:
            out.extend(self.engine.process([event]))
        return out

    def book(self, sku: str):
        for s, book in self.engine.books():
            if s == sku:
                return book
        raise KeyError(sku)

    def pos(self, sku: str, node: str):
        return self.book(sku).positions[node]

    def line(self, sku: str, order_id: str, line_id: str = "1"):
        return self.book(sku).line(order_id, line_id)


# -- looking at outputs ----------------------------------------------------------------


def of(outputs: list, kind: type) -> list:
    return [o for o in outputs if type(o) is kind]


def statuses(outputs: list) -> list[tuple]:
    """(order_id, line_id, status, node, qty) of every order.status, in order."""
    return [(o.order_id, o.line_id, o.status, o.node, o.qty) for o in of(outputs, OrderStatus)]


def allocations(outputs: list) -> list[tuple]:
    """(order_id, line_id, node, qty) of every dispatch.allocate, in order."""
    return [(o.order_id, o.line_id, o.node, o.qty) for o in of(outputs, DispatchAllocate)]


def releases(outputs: list) -> list[tuple]:
    """(order_id, line_id, node, qty, reason) of every dispatch.release, in order."""
    return [(o.order_id, o.line_id, o.node, o.qty, o.reason) for o in of(outputs, DispatchRelease)]


def alerts(outputs: list, kind: str | None = None) -> list[Alert]:
    return [o for o in of(outputs, Alert) if kind is None or o.kind == kind]


def availability(outputs: list) -> dict[tuple[str, str], int]:
    """(sku, channel) -> available, last value per pair."""
    return {(o.sku, o.channel): o.available for o in of(outputs, AvailabilityChanged)}


def max_lines(outputs: list) -> dict[tuple[str, str], int]:
    """(sku, channel) -> max_line_qty, last value per pair."""
    return {(o.sku, o.channel): o.max_line_qty for o in of(outputs, AvailabilityChanged)}


def replenishments(outputs: list) -> list[ReplenishmentRequested]:
    return of(outputs, ReplenishmentRequested)


def older_snapshot(ledger, since: str) -> bytes:
    """The ledger's snapshot as written before books kept their field `since` (and every
    field added after it: new fields go last, so older snapshots restore)."""
    dropped = len(SkuBook.__struct_fields__) - SkuBook.__struct_fields__.index(since)
    catalog, books = msgspec.msgpack.decode(ledger.snapshot())
    return msgspec.msgpack.encode([catalog, {k: b[:-dropped] for k, b in books.items()}])
