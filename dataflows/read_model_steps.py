"""The read model's round trips (live mode): one before and one after the ledger, for every
bucket a worker's batch touches at once.

    routed work -> fence (one pipeline: fence the batch's SKUs, take in their checkout holds)
        -> apply_ledger (per bucket: outputs, and the views the read model needs)
        -> write (one pipeline: every bucket's views, which lift the fences) -> outputs

Each bucket of a batch used to make both round trips itself: up to 16 a batch with live
mode's 8 buckets, up to 128 with 64. Now a batch makes two, and more buckets cost no latency.

Why a checkout never sells what the engine has given away: a SKU stays fenced (reservations
answer BUSY) from the intake of its holds until its new availability is written, and the
holds it took in apply before anything else of the batch. The fence lapses after
`fence_ms`, so that a dead engine does not block checkouts for long; a batch that reaches its
bucket later than half of that after it was fenced (a cluster process that is behind) is
fenced again there, and its holds taken in afresh (`refenced`).

Why a restarted engine decides as the run before it did: every intake is logged in Redis
with its position (`reservations.lua`), and so is the furthest position fenced. A rerun takes
in, up to that position, what the log says (`redo_until`), and live holds only after it; the
ledger skips intakes it applied already (their number). The ledger journals what it applied
to Kafka, where a replay of the recorded topics finds it.
"""

from __future__ import annotations

from stockflow.state.read_model import views
from stockflow.state.work import Intake, position, skus_in, takes_live_holds

from .ports import BucketWork, ReadModel, ViewsToWrite

READ_MODEL = "read-model"  # the ledger's output key for its views; never reaches a topic


def fence(store: ReadModel):
    """The step before the ledger: on the worker that routed them, so one call per batch."""

    def fence_batch(routed: list[tuple[str, BucketWork]]) -> list[tuple[str, BucketWork]]:
        routed = _one_per_bucket(routed)
        intakes: dict[str, Intake] = {}
        fresh = []
        reached = None
        for _, work in routed:
            start = _fresh_from(work.items, store.redo_until)
            fresh.append(None if start is None else position(work.items[start]))
            first, last = position(work.items[0]), position(work.items[-1])
            reached = last if reached is None else max(reached, last)
            intake = Intake(fresh[-1], min(last, store.redo_until)
                            if first <= store.redo_until else None,
                            work.items[start or 0][0])
            for sku in skus_in(work.items):
                intakes[sku] = intake
        taken = store.begin(intakes, reached)
        if not taken:  # None: Redis is away, the batch goes on without holds; {}: no SKUs
            return routed
        return [(bucket, work._replace(
                    intakes=[t for sku in skus_in(work.items) for t in taken.get(sku, ())],
                    fresh_at=at))
                for (bucket, work), at in zip(routed, fresh)]

    return fence_batch


def _one_per_bucket(routed: list[tuple[str, BucketWork]]) -> list[tuple[str, BucketWork]]:
    """Several routed batches of one bucket as one: each SKU is fenced once, where its
    first batch starts."""
    by_bucket: dict[str, BucketWork] = {}
    for bucket, work in routed:
        if not work.items:
            continue
        was = by_bucket.get(bucket)
        by_bucket[bucket] = work if was is None else BucketWork(
            min(was.read_at, work.read_at), was.items + work.items)
    return list(by_bucket.items())


def _fresh_from(items: list, redo_until: int) -> int | None:
    """The index of the first item where live holds may be taken in (`takes_live_holds`);
    None if at none."""
    for i, item in enumerate(items):
        if takes_live_holds(position(item), redo_until):
            return i
    return None


def fence_lapsing(store: ReadModel, read_at: float, now: float) -> bool:
    """Batches routed (and fenced) at `read_at` were fenced so long ago that the fence may
    lapse before they are written. (`read_at` is the routing process's wall clock: a
    cluster's hosts keep theirs in step.)"""
    return now - read_at > store.fence_ms / 2000


def refenced(store: ReadModel, batches: list[BucketWork], read_at: float) -> list[BucketWork]:
    """The batches as one, fenced again by this bucket itself, with the checkout holds taken
    in afresh where the first fence took them (after what it took)."""
    items = [w for b in batches for w in b.items]
    intakes = [t for b in batches for t in b.intakes or ()]
    fresh_at = next((b.fresh_at for b in batches if b.fresh_at is not None), None)
    if fresh_at is not None:
        clock_ms = next(item[0] for item in items if position(item) >= fresh_at)
        again = store.begin(dict.fromkeys(skus_in(items), Intake(fresh_at, None, clock_ms)))
        intakes += [t for found in (again or {}).values() for t in found]
    return [BucketWork(read_at, items, intakes or None, fresh_at)]


def views_to_write(store: ReadModel, bucket: int, ledger, outputs: list) -> ViewsToWrite:
    """A bucket's views after a batch: whole if it has not written them whole since the last
    outage (its first write, or Redis was away or lost them), else what the batch changed."""
    whole = not store.is_whole(bucket)
    return ViewsToWrite(bucket, store.outages if whole else None, views(ledger, outputs, whole))


def write_views(store: ReadModel, writes: list[ViewsToWrite]) -> None:
    if store.write([view for w in writes for view in w.views]):
        for w in writes:
            if w.whole_since is not None:
                store.whole(w.bucket, w.whole_since)


def write(store: ReadModel):
    """The step after the ledger: writes its views in one call, passes the outputs on."""

    def write_batch(applied: list[tuple[str, object]]) -> list[tuple[str, object]]:
        writes = [payload for stream, payload in applied if stream == READ_MODEL]
        if not writes:
            return applied
        write_views(store, writes)
        return [item for item in applied if item[0] != READ_MODEL]

    return write_batch
