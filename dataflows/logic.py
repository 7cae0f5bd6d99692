"""Adapters that run the domain's router and ledger as Bytewax keyed state.

They hold a `state` object and forward batches to it; nothing here decides anything. An
optional `observer` (ops.metrics) is told what each batch did.
"""

from __future__ import annotations

import pickle
import time
from datetime import datetime, timedelta, timezone

from bytewax.operators import StatefulBatchLogic

from stockflow.connectors.codec import encode_by_stream
from stockflow.state.config import EngineConfig
from stockflow.state.ledger import Ledger
from stockflow.state.read_model import views
from stockflow.state.routing import Router
from stockflow.state.work import with_checkout_holds

DEAD_LETTERS = "dead"  # the router's output key for dead letters; buckets are "0".."n-1"


class RouterLogic(StatefulBatchLogic):
    """One per input partition: routes its decoded chunks to ledger buckets, in order.

    Each bucket gets `(read_at, work)`: the wall time the router took the batch, for latency.
    With `clock_tick_s` (live mode) the clock also follows wall time, so holds expire on time
    while an input is quiet; Bytewax timers are wall-clock, which is what this wants.
    """

    def __init__(self, config: EngineConfig, durable: bool, resume: bytes | None,
                 clock_tick_s: float | None = None, observer=None):
        self.router = pickle.loads(resume) if resume is not None else Router(config)
        self.durable = durable
        self.observer = observer
        self.tick = timedelta(seconds=clock_tick_s) if clock_tick_s else None
        self.next_tick = datetime.now(timezone.utc) + self.tick if self.tick else None

    def on_batch(self, chunks: list[list]):
        read_at = time.time()
        items = chunks[0] if len(chunks) == 1 else [i for chunk in chunks for i in chunk]
        duplicates = self.router.duplicates
        work, dead = self.router.route(items)
        if self.observer is not None:
            self.observer.routed(items, duplicates, self.router.duplicates)
        out = [(str(bucket), (read_at, lst)) for bucket, lst in work.items()]
        if dead:
            out.append((DEAD_LETTERS, dead))
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self):
        return self.next_tick

    def on_notify(self):
        now = datetime.now(timezone.utc)
        self.next_tick = now + self.tick
        work = self.router.advance(int(now.timestamp() * 1000))
        read_at = time.time()
        return [(str(b), (read_at, lst)) for b, lst in work.items()], StatefulBatchLogic.RETAIN

    def snapshot(self):
        return pickle.dumps(self.router, protocol=5) if self.durable else None


class LedgerLogic(StatefulBatchLogic):
    """One per bucket: applies its work and returns outputs encoded, grouped by stream.

    With a read-model `store` (live mode), the batch's SKUs are fenced and their live checkout
    holds read before the batch, and the read model written after it. A timer checks every
    second whether Redis was away since this bucket's read model was last whole, and rewrites
    it then, batch or no batch.
    """

    CHECK_EVERY = timedelta(seconds=1)

    def __init__(self, config: EngineConfig, durable: bool, resume: bytes | None, store=None,
                 observer=None):
        self.ledger = Ledger.restore(resume, config) if resume is not None else Ledger(config)
        self.durable = durable
        self.store = store
        self.observer = observer
        self.outages_seen = -1  # the store's outage count when this read model was last whole

    def on_batch(self, batches: list):
        read_at = min(b[0] for b in batches)
        items = batches[0][1] if len(batches) == 1 else [w for b in batches for w in b[1]]
        shortage = self.ledger.shortage_units
        store = self.store
        if store is None:
            outputs = self.ledger.apply_batch(items)
        else:
            live = store.begin(items)
            if live is not None:
                items = with_checkout_holds(items, live)
            outputs = self.ledger.apply_batch(items)
            self._publish(outputs)
        by_stream = encode_by_stream(outputs)
        if self.observer is not None:
            oldest = items[0][2].ts.timestamp() if items else None
            self.observer.applied(self.ledger, outputs, by_stream, read_at, oldest, shortage)
        return list(by_stream.items()), StatefulBatchLogic.RETAIN

    def notify_at(self):
        return datetime.now(timezone.utc) + self.CHECK_EVERY if self.store is not None else None

    def on_notify(self):
        if self.outages_seen != self.store.outages:
            self._publish([])
        return [], StatefulBatchLogic.RETAIN

    def _publish(self, outputs: list) -> None:
        store = self.store
        whole = self.outages_seen != store.outages  # first write, or Redis was away
        outages = store.outages
        if store.publish(views(self.ledger, outputs, whole)) and whole:
            self.outages_seen = outages

    def snapshot(self):
        if self.observer is None:
            return self.ledger.snapshot() if self.durable else None
        started = time.perf_counter()
        state = self.ledger.snapshot() if self.durable else None
        self.observer.state(self.ledger, time.perf_counter() - started)
        return state
