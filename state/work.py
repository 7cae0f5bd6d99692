"""What the router hands a ledger bucket: events, stamped with the clock and input position.

A work item is a tuple `(clock_ms, seq, cause, payload, skus)`:
- `clock_ms`: the engine's clock (highest event time seen) when the item was routed;
- `seq`: the position of the cause in its input partition (orders' FIFO rank);
- `cause`: the input event whose processing this is (its `event_id` and `ts` go on outputs);
- `payload`: the event itself, or an `Expire` / `Forget` / `InboundDue` / `Sweep` (sweep.py)
  the router derived from it, or (live mode) a SKU's live `CheckoutHolds`, read just before
  its batch;
- `skus`: for order events, the SKUs of the order that live in the receiving bucket.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

from .checkout import CheckoutHolds

Work = tuple[int, int, Any, Any, tuple[str, ...] | None]


class Expire(msgspec.Struct, frozen=True, array_like=True):
    """The order's hold deadline passed while it was unpaid."""

    order_id: str


class Forget(msgspec.Struct, frozen=True, array_like=True):
    """The order left the retention window: lines that hold nothing may be dropped."""

    order_id: str


class InboundDue(msgspec.Struct, frozen=True, array_like=True):
    """The clock brought an inbound ETA of the SKU within the ATP horizon."""

    sku: str


def bucket_of(sku: str, buckets: int) -> int:
    """The ledger bucket that owns a SKU: stable across processes and restarts."""
    return zlib.crc32(sku.encode()) % buckets


def skus_in(items: list[Work]) -> list[str]:
    """The SKUs a batch of work touches, in first-touch order (master data touches none)."""
    seen: dict[str, None] = {}
    for _, _, _, payload, skus in items:
        if skus is not None:
            for sku in skus:
                seen[sku] = None
        else:
            sku = getattr(payload, "sku", None)
            if sku is not None:
                seen[sku] = None
    return list(seen)


def with_checkout_holds(items: list[Work], live: dict) -> list[Work]:
    """The batch, preceded by each SKU's live checkout holds (`live`: sku -> holds)."""
    if not items or not live:
        return items
    clock_ms, seq, cause, _, _ = items[0]
    first = [(clock_ms, seq, cause, CheckoutHolds(sku, holds), None) for sku, holds in live.items()]
    return first + items
