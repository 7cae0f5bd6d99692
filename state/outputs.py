"""Output events of contract v1.1, and the stream each one is written to.

Every output names its `cause` (the input `event_id` whose processing produced it) and the
event time `ts` of that cause. Commands carry a `command_id` derived from the input alone, so
reprocessing the same input yields the same ids and consumers can drop duplicates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Union

import msgspec
from msgspec import Struct

LineStatus = Literal[
    "held", "allocated", "backordered", "rejected", "expired", "cancelled", "shipped", "returned"
]
AlertKind = Literal[
    "low_stock", "shortage", "slow_mover", "drift", "snapshot_quarantined",
    "transfer_expired", "transfer_taken_back", "wos_sold_away", "clock_jump",
]
# Why a line stands where its `order.status` says, when that is not a plain success: the one
# list of reasons (the schema and the README show it). Rejected or backordered:
# unknown_channel, no_eligible_node (configuration), no_stock, split_not_allowed (no one node
# fills the line, the eligible nodes together would, its channel does not split lines),
# shortage (taken back when supply fell, not re-sourced). Held or allocated again after an
# earlier status: backorder_filled, moved_by_shortage (to other nodes), revived_by_payment (a
# rejected or expired line paid), promise_moved (its `promised_at` at that node moved: on
# hand there no longer gives it now, or the inbound it waits for came early or slipped).
# Then hold_expired, hold_released (a checkout hold its checkout released), order_cancelled,
# shipped_beyond_allocation, restocked, not_restocked.
StatusReason = Literal[
    "unknown_channel", "no_eligible_node", "no_stock", "split_not_allowed", "shortage",
    "backorder_filled", "moved_by_shortage", "revived_by_payment", "promise_moved",
    "hold_expired", "hold_released", "order_cancelled", "shipped_beyond_allocation",
    "restocked", "not_restocked",
]

# Why a well-formed event was refused: it contradicts what the engine knows (a dead letter with
# `source` "engine"). A shipment or return of a known order: sku_not_in_order, it names a SKU
# none of the order's lines has; line_sku_mismatch, it names a line with another line's SKU.
# unknown_order: a payment or cancellation of an order the engine does not know (never seen,
# refused, or past retention); it can be sent again once the order exists. event_id_reused:
# an event id already seen on other content; order_conflict: an order.created resent with
# other lines than the order has. ts_implausible: stamped beyond the clock by more than
# `max_clock_jump_s`, and not confirmed by the next event (clock_guard.py); ts_ahead (live):
# stamped more than `max_ahead_s` after its Kafka record was written.
RefusalReason = Literal[
    "sku_not_in_order", "line_sku_mismatch", "unknown_order", "event_id_reused",
    "order_conflict", "ts_implausible", "ts_ahead",
]


class _Output(Struct, frozen=True, tag_field="type", kw_only=True):
    ts: datetime
    cause: str


class DispatchAllocate(_Output, frozen=True, tag="dispatch.allocate"):
    command_id: str
    order_id: str
    line_id: str
    sku: str
    node: str
    qty: int
    channel: str


class DispatchRelease(_Output, frozen=True, tag="dispatch.release"):
    command_id: str
    order_id: str
    line_id: str
    sku: str
    node: str
    qty: int
    reason: str


class OrderStatus(_Output, frozen=True, tag="order.status"):
    order_id: str
    line_id: str
    sku: str
    status: LineStatus
    qty: int
    node: str | None = None
    # Optional, added by stockflow: why the line stands there (None: a plain success).
    reason: StatusReason | None = None
    paid: bool | None = None
    # Optional, added by stockflow: a line held or allocated at a node whose on hand, less
    # what is committed there, does not cover it is promised for the ETA of the inbound
    # supply its channel counts that does. None: served from stock on hand.
    promised_at: datetime | None = None


class ReplenishmentRequested(_Output, frozen=True, tag="replenishment.requested"):
    command_id: str
    sku: str
    node: str
    qty: int
    reason: str
    from_node: str | None = None


class AvailabilityChanged(_Output, frozen=True, tag="availability.changed"):
    """The latest state of a (sku, channel): a newer one replaces it; never published is 0."""

    sku: str
    channel: str
    available: int  # the channel's nodes pooled: what it can sell in all
    # The most one order line can be promised now: `available` where the channel splits
    # lines, else the largest ATP at one node a ship line could be sourced from.
    max_line_qty: int


class Alert(_Output, frozen=True, tag="alert"):
    kind: AlertKind
    sku: str
    detail: str
    node: str | None = None
    # Optional, added by stockflow: the transfer a `transfer_*` alert ends (the command id of
    # its `replenishment.requested`).
    transfer: str | None = None
    # Optional, added by stockflow: the channel a `wos_sold_away` alert is about.
    channel: str | None = None


class DeadLetter(_Output, frozen=True, tag="dead_letter"):
    raw: str
    error: str
    source: str
    # Optional, added by stockflow: why a well-formed event was refused (None: the message is
    # not an event; `error` says why).
    reason: RefusalReason | None = None


OutputEvent = Union[
    DispatchAllocate,
    DispatchRelease,
    OrderStatus,
    ReplenishmentRequested,
    AvailabilityChanged,
    Alert,
    DeadLetter,
]

# Stream name (Kafka topic `stockflow.<stream>`, file `<stream>.jsonl`) of each output type.
STREAM_OF: dict[type, str] = {
    DispatchAllocate: "dispatch",
    DispatchRelease: "dispatch",
    OrderStatus: "order-status",
    ReplenishmentRequested: "replenishment",
    AvailabilityChanged: "availability",
    Alert: "alerts",
    DeadLetter: "dead-letter",
}
STREAMS: tuple[str, ...] = (
    "dispatch", "order-status", "replenishment", "availability", "alerts", "dead-letter"
)
# The engine's own journal of the checkout holds it took in (`CheckoutTaken`, an input event
# type): not an output for consumers, the record a replay of the recorded topics needs.
INTAKE_JOURNAL = "checkout-intake"


def output_schema() -> dict:
    """JSON Schema of every output event, generated from the types."""
    return msgspec.json.schema(OutputEvent)
