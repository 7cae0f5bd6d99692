"""Input events of contract v1.1, declared once as msgspec Structs.

A tagged union on `type`: `msgspec.json.Decoder(InputEvent)` validates a message and
returns the right Struct, or raises with a readable path (`at $.lines[0].qty`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta, Struct

# Shared field types: the ranges in them are the contract's rules, checked at decode.
Id = Annotated[str, Meta(min_length=1)]
Ts = Annotated[datetime, Meta(tz=True)]  # RFC 3339 with a zone
Qty = Annotated[int, Meta(gt=0)]
Count = Annotated[int, Meta(ge=0)]
Share = Annotated[float, Meta(ge=0, le=1)]
Lat = Annotated[float, Meta(ge=-90, le=90)]
Lon = Annotated[float, Meta(ge=-180, le=180)]

NodeKind = Literal["dc", "store", "distributor", "platform"]
SupplyKind = Literal["in_transit", "production", "purchase_order"]
Fulfillment = Literal["ship", "pickup"]


class _Event(Struct, frozen=True, tag_field="type", kw_only=True):
    event_id: Id
    ts: Ts


# -- master data -------------------------------------------------------------


class Node(Struct, frozen=True, kw_only=True):
    id: Id
    kind: NodeKind
    region: str
    lat: Lat
    lon: Lon
    can_ship: bool
    can_pickup: bool
    ship_cost: float | None = None
    active: bool = True
    # Optional, added by stockflow: this node's snapshot guard (see `EngineConfig`), over the
    # engine's. A share of 1 turns it off here: no count can drop on hand by more than all.
    snapshot_guard_share: Share | None = None
    snapshot_guard_units: Count | None = None


class SupplyTerms(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a channel counts of one kind of inbound supply (a stockflow addition)."""

    share: Share = 1.0  # of the units due, rounded down: 0.5 of 7 counts 3
    # How far ahead of the engine's clock an ETA may lie to count; None: the engine's
    # `inbound_horizon_s`.
    horizon_s: Annotated[float, Meta(ge=0)] | None = None


class Channel(Struct, frozen=True, kw_only=True):
    id: Id
    nodes: Annotated[list[Id], Meta(min_length=1)]  # ["*"] means every node
    hold_ttl_s: Annotated[float, Meta(gt=0)]
    allow_split: bool
    backorder: bool
    wos_weeks: Annotated[float, Meta(ge=0)] | None = None
    # Optional, added by stockflow: which inbound supply this channel may promise, by kind
    # (`supply_policy.py`). None: every kind, whole, within the engine's horizon. A kind not
    # listed is not promised; {} promises stock on hand only (an immediate-ship channel).
    supply: dict[SupplyKind, SupplyTerms] | None = None

    @property
    def all_nodes(self) -> bool:
        return "*" in self.nodes


class NodeUpserted(_Event, frozen=True, tag="node.upserted"):
    node: Node


class ChannelUpserted(_Event, frozen=True, tag="channel.upserted"):
    channel: Channel


class PolicyUpserted(_Event, frozen=True, tag="policy.upserted"):
    sku: Id
    node: Id
    safety_stock: Count
    reorder_point: Count | None = None
    # Optional: the level a replenishment tops ATP back up to (default 2 x reorder_point).
    order_up_to: Count | None = None


# -- supply ------------------------------------------------------------------


class StockSnapshot(_Event, frozen=True, tag="stock.snapshot"):
    sku: Id
    node: Id
    on_hand: Count
    seq: int


class StockSnapshotApproved(_Event, frozen=True, tag="stock.snapshot.approved"):
    """Someone checked a quarantined count (alert `snapshot_quarantined`) and it is right: it
    is applied as it would have been, on top of what changed on hand since."""

    snapshot_event_id: Id


class StockSnapshotRejected(_Event, frozen=True, tag="stock.snapshot.rejected"):
    """A quarantined count was wrong: it is dropped, and the ledger's count stands."""

    snapshot_event_id: Id


class StockAdjusted(_Event, frozen=True, tag="stock.adjusted"):
    sku: Id
    node: Id
    delta: int
    reason: str


class SupplyInbound(_Event, frozen=True, tag="supply.inbound"):
    supply_id: Id
    sku: Id
    node: Id
    qty: Count
    eta: Ts
    kind: SupplyKind


class SupplyReceived(_Event, frozen=True, tag="supply.received"):
    supply_id: Id
    sku: Id
    node: Id
    qty: Qty


class ShipmentConfirmed(_Event, frozen=True, tag="shipment.confirmed"):
    order_id: Id
    line_id: Id
    sku: Id
    node: Id
    qty: Qty


class TransferShipped(_Event, frozen=True, tag="transfer.shipped"):
    """Added by stockflow: the WMS shipped a transfer (`command_id` of the
    `replenishment.requested` that asked for it). On hand at `from_node` drops by `qty` and
    its reserve there is released; `to_node` counts `qty` in transit until its
    `supply.received` (`supply_id` = the command id)."""

    command_id: Id
    sku: Id
    from_node: Id
    to_node: Id
    qty: Qty


class TransferCancelled(_Event, frozen=True, tag="transfer.cancelled"):
    """Added by stockflow: a transfer will not be carried out: its reserve at the source is
    released and its units no longer count in transit at the destination."""

    command_id: Id


# -- demand ------------------------------------------------------------------


class OrderLine(Struct, frozen=True, kw_only=True):
    line_id: Id
    sku: Id
    qty: Qty


class ShipTo(Struct, frozen=True, kw_only=True):
    region: str
    lat: Lat
    lon: Lon


class OrderCreated(_Event, frozen=True, tag="order.created"):
    order_id: Id
    channel: Id
    lines: Annotated[list[OrderLine], Meta(min_length=1)]
    ship_to: ShipTo
    fulfillment: Fulfillment
    paid: bool
    pickup_node: Id | None = None
    hold_id: Id | None = None


class OrderPaid(_Event, frozen=True, tag="order.paid"):
    order_id: Id


class OrderCancelled(_Event, frozen=True, tag="order.cancelled"):
    order_id: Id
    line_ids: list[Id] | None = None


class OrderReturned(_Event, frozen=True, tag="order.returned"):
    order_id: Id
    line_id: Id
    sku: Id
    node: Id
    qty: Qty
    restock: bool


# -- time ----------------------------------------------------------------------


class ClockTick(_Event, frozen=True, tag="clock.tick"):
    """Moves the engine's clock to `ts` if that is later; nothing else. Live mode writes
    these into quiet input partitions, so holds expire on time and the merge of partitions
    by event time never waits long for one that has nothing to say."""


# -- checkouts -------------------------------------------------------------------


class CheckoutHold(Struct, frozen=True, kw_only=True):
    """One hold a checkout took through the reservation API (connectors/reservations.lua)."""

    hold_id: Id
    channel: str
    qty: Qty
    expires_ms: int  # when the reservation store drops it (its own clock, ms)


class CheckoutTaken(_Event, frozen=True, tag="checkout.taken"):
    """What the engine took in of one SKU's checkout holds, and where: written by the engine
    itself (live mode) to its intake journal, `<prefix>checkout-intake`, and applied from it
    by a replay of the recorded topics, so checkouts decide there as they did live.

    `holds` is the SKU's whole set of live checkout holds from then on (as `held` statuses
    are a line's): one it had and `holds` lacks was released (named in `released`) or
    expired. `at` is the position in the merged input it applies at: 2q before the q-th
    input message (counting every message the router takes, ticks and duplicates
    included), 2q + 1 just after it. `n` counts the SKU's intakes: one already applied
    (n not above the SKU's last) does nothing. `ts` is the engine's clock where it applied;
    it does not move the clock."""

    sku: Id
    at: Annotated[int, Meta(ge=0)]
    n: Annotated[int, Meta(ge=1)]
    holds: list[CheckoutHold]
    released: list[str] = []


InputEvent = Union[
    NodeUpserted,
    ChannelUpserted,
    PolicyUpserted,
    StockSnapshot,
    StockSnapshotApproved,
    StockSnapshotRejected,
    StockAdjusted,
    SupplyInbound,
    SupplyReceived,
    ShipmentConfirmed,
    TransferShipped,
    TransferCancelled,
    OrderCreated,
    OrderPaid,
    OrderCancelled,
    OrderReturned,
    ClockTick,
    CheckoutTaken,
]

MASTER_EVENTS = (NodeUpserted, ChannelUpserted)
ORDER_EVENTS = (OrderCreated, OrderPaid, OrderCancelled)
SNAPSHOT_VERDICTS = (StockSnapshotApproved, StockSnapshotRejected)


def check_rules(event: InputEvent) -> str | None:
    """Rules a schema cannot say; returns the reason an event breaks one, else None."""
    if isinstance(event, OrderCreated):
        if event.fulfillment == "pickup" and event.pickup_node is None:
            return "pickup order needs `pickup_node` - at `$.pickup_node`"
        seen: set[str] = set()
        for line in event.lines:
            if line.line_id in seen:
                return f"duplicate line_id {line.line_id!r} - at `$.lines`"
            seen.add(line.line_id)
    return None


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch: the engine's clock unit."""
    return int(ts.timestamp() * 1000)


def input_schema() -> dict:
    """JSON Schema of every input event, generated from the types."""
    return msgspec.json.schema(InputEvent)


class Malformed(Struct, frozen=True):
    """A message that is not an event: it becomes a dead letter with its reason."""

    raw: str
    error: str
    source: str  # where it came from: file:line, or topic:partition:offset
    event_id: str | None = None  # when the message had a readable one
    # Why a well-formed event was refused at the edge (`ts_ahead`); None: not an event.
    reason: str | None = None
