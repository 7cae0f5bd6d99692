"""The read model's round trips (live mode): one before and one after the ledger, for every
bucket a worker's batch touches at once.

    routed work -> fence (one pipeline: fence the batch's SKUs, read their checkout holds)
        -> apply_ledger (per bucket: outputs, and the views the read model needs)
        -> write (one pipeline: every bucket's views, which lift the fences) -> outputs

Each bucket of a batch used to make both round trips itself: up to 16 a batch with live
mode's 8 buckets, up to 128 with 64. Now a batch makes two, and more buckets cost no latency.

Why a checkout never sells what the engine has given away: a SKU stays fenced (reservations
answer BUSY) from the read of its holds until its new availability is written. The fence
lapses after `fence_ms`, so that a dead engine does not block checkouts for long; a batch
that reaches its bucket later than half of that after it was fenced (a cluster process
that is behind) is fenced again there, and its holds read afresh (`refenced`).
"""

from __future__ import annotations

from stockflow.state.read_model import views
from stockflow.state.work import skus_in

from .ports import BucketWork, ReadModel, ViewsToWrite

READ_MODEL = "read-model"  # the ledger's output key for its views; never reaches a topic


def fence(store: ReadModel):
    """The step before the ledger: on the worker that routed them, so one call per batch."""

    def fence_batch(routed: list[tuple[str, BucketWork]]) -> list[tuple[str, BucketWork]]:
        skus_of = [skus_in(work.items) for _, work in routed]
        live = store.begin(list(dict.fromkeys(sku for skus in skus_of for sku in skus)))
        if not live:  # None: Redis is away, the batch goes on without holds; {}: no SKUs
            return routed
        return [(bucket, work._replace(holds={sku: live[sku] for sku in skus}) if skus else work)
                for (bucket, work), skus in zip(routed, skus_of)]

    return fence_batch


def fence_lapsing(store: ReadModel, read_at: float, now: float) -> bool:
    """Batches routed (and fenced) at `read_at` were fenced so long ago that the fence may
    lapse before they are written. (`read_at` is the routing process's wall clock: a
    cluster's hosts keep theirs in step.)"""
    return now - read_at > store.fence_ms / 2000


def refenced(store: ReadModel, batches: list[BucketWork], read_at: float) -> list[BucketWork]:
    """The batches as one, fenced again by this bucket itself and with its holds as they are
    now (they supersede those read at the first fence)."""
    items = [w for b in batches for w in b.items]
    holds = store.begin(skus_in(items))
    return [BucketWork(read_at, items, holds or None)]


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
