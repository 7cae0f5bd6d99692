"""What the router hands a ledger bucket: events, stamped with the clock and input position.

A work item is a tuple `(clock_ms, seq, cause, payload, skus)`:
- `clock_ms`: the engine's clock (highest event time seen) when the item was routed;
- `seq`: the position of the cause in the merged input: the q-th message the router took,
  ticks, duplicates and malformed ones included (orders' FIFO rank, and where a checkout
  intake applies: `position`);
- `cause`: the input event whose processing this is (its `event_id` and `ts` go on outputs);
- `payload`: the event itself, or an `Expire` / `Forget` / `InboundDue` / `Sweep` (sweep.py)
  the router derived from it, or a `CheckoutTaken` (checkout.py) applied there, or (live
  mode) a `CheckoutDue`: a SKU whose checkout holds changed, to be taken in;
- `skus`: for order events, the SKUs of the order that live in the receiving bucket.
"""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

import msgspec

from .events import CheckoutTaken, Ts, epoch_ms

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


class CheckoutDue(msgspec.Struct, frozen=True, array_like=True):
    """The reservation store says the SKU's checkout holds changed (a grant, a release, an
    expiry) while nothing else of it came: take them in now (live mode). It stands just
    after the input message at its `seq`, and is its own cause."""

    sku: str
    ts: Ts  # the engine's clock

    @property
    def event_id(self) -> str:
        return f"checkout-due:{self.sku}"


def position(item: Work) -> int:
    """Where an item stands in the merged input, in the unit of `CheckoutTaken.at`: 2q for
    what the q-th message caused, 2q + 1 for a `CheckoutDue` just after it."""
    return 2 * item[1] + (type(item[3]) is CheckoutDue)


def due_position(seq: int) -> int:
    """Where a `CheckoutDue` routed after the `seq`-th message stands."""
    return 2 * seq + 1


def takes_live_holds(at: int, reached: int) -> bool:
    """Whether a batch item at position `at` may take live checkout holds in, when a run
    before this one fenced up to `reached`: past it; or at it, where that was a
    `CheckoutDue` (odd), after what that run took in there, since nothing else was decided
    there. Anywhere else that run decided without what the holds are now."""
    return at > reached or (at == reached and at % 2 == 1)


def with_intakes(items: list[Work], intakes: list[CheckoutTaken]) -> list[Work]:
    """The batch with each checkout intake in its place: before the first item at or past
    its position (intakes in order of their positions, then of their numbers)."""
    if not intakes:
        return items
    intakes = sorted(intakes, key=lambda t: (t.at, t.n))
    out: list[Work] = []
    i = 0
    for item in items:
        at = position(item)
        while i < len(intakes) and intakes[i].at <= at:
            out.append(intake_work(intakes[i]))
            i += 1
        out.append(item)
    out.extend(intake_work(t) for t in intakes[i:])
    return out


def intake_work(taken: CheckoutTaken) -> Work:
    """The work item that applies a checkout intake: at its own clock and position."""
    return (epoch_ms(taken.ts), (taken.at + 1) // 2, taken, taken, None)


class Intake(NamedTuple):
    """How to take one SKU's checkout holds in before its batch (the read model store's `begin`)."""

    fresh_at: int | None  # take the live holds in here (a position); None: not in this batch
    redo_until: int | None  # first take in what the log has up to here (after a restart)
    clock_ms: int  # the engine's clock at fresh_at
