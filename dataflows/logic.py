"""Adapters that run the domain's aligner, router and ledger as Bytewax keyed state.

They hold a `state` object and forward batches to it; nothing here decides anything. An
optional `observer` (ops.metrics) is told what each batch did.
"""

from __future__ import annotations

import logging
import pickle
import time
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import msgspec
from bytewax.operators import StatefulBatchLogic

from stockflow.connectors.chunks import Decoded
from stockflow.connectors.codec import encode_by_stream
from stockflow.connectors.kafka_source import stop_requested
from stockflow.state.alignment import Aligner
from stockflow.state.config import EngineConfig
from stockflow.state.ledger import Ledger
from stockflow.state.outputs import INTAKE_JOURNAL
from stockflow.state.routing import Router
from stockflow.state.work import due_position, takes_live_holds, with_intakes

from .ports import BucketWork, Observer, ReadModel, Ticker
from .read_model_steps import (
    READ_MODEL,
    fence_lapsing,
    refenced,
    views_to_write,
    write_views,
)

DEAD_LETTERS = "dead"  # the router's output key for dead letters; buckets are "0".."n-1"

_ENCODE = msgspec.json.Encoder().encode

log = logging.getLogger(__name__)


class AlignTiming(NamedTuple):
    """Wall-clock knobs of the merge (live mode's `[run]` settings)."""

    idle_wait_s: float = 5.0  # waiting on one empty partition this long passes it over
    tick_s: float = 0.0  # a partition quiet this long gets a clock.tick (0: no ticks written)
    waited_ms: int = 5  # a partition holding events up this long gets one at once
    checkout_poll_ms: int = 10  # how often SKUs whose checkout holds changed are looked for
    # An event stamped more than this after its Kafka record was written is refused
    # (`ts_ahead`); only messages that carry a record timestamp are judged.
    max_ahead_s: float = 300.0


class SequencerLogic(StatefulBatchLogic):
    """The one place all input meets: merges the input partitions by event time
    (`state/alignment.py`), routes the merged stream (`state/routing.py`) and hands each
    ledger bucket its work, in that one order.

    Each bucket gets a `BucketWork`: its items, and the wall time the batch was taken (for
    latency).
    With a `ticker` (live mode), quiet partitions and partitions the merge waits on are sent
    `clock.tick` events (`timing.tick_s`, `timing.waited_ms`); Bytewax timers are wall-clock,
    which is what deciding *when to write* a tick wants, while what the ticks do is decided
    by their place in the recorded input.
    """

    def __init__(self, config: EngineConfig, partitions: list[str], timing: AlignTiming,
                 durable: bool, resume: bytes | None, ticker: Ticker | None = None,
                 observer: Observer | None = None, store: ReadModel | None = None):
        now = _now_ms()
        if resume is not None:
            self.aligner, self.router = pickle.loads(resume)
            self.aligner.resumed(now)
            self.aligner.idle_wait_ms = int(timing.idle_wait_s * 1000)  # settings may change
            self.aligner.max_jump_ms = int(config.max_clock_jump_s * 1000)
        else:
            self.aligner = Aligner(partitions, int(timing.idle_wait_s * 1000),
                                   int(config.max_clock_jump_s * 1000))
            self.router = Router(config)
        self.timing = timing
        self.durable = durable
        self.ticker = ticker if timing.tick_s else None
        self.observer = observer
        self.late_seen = dict(self.aligner.late_by)  # what was already reported
        # With a reservation store: every `checkout_poll_ms`, SKUs whose checkout holds
        # changed are sent to be taken in, whether or not anything else of theirs comes.
        self.store = store
        self.next_poll = now
        if store is not None and resume is not None:  # where the run before took holds in
            self.router.rewake(store.woken(due_position(self.router.seq)))

    def on_batch(self, chunks: list[Decoded]):
        now = _now_ms()
        add = self.aligner.add
        for chunk in chunks:
            add(chunk.source, chunk.events, now, chunk.end)
        return self._route(now), StatefulBatchLogic.RETAIN

    def notify_at(self):
        if self.ticker is not None:
            at = _now_ms() + self.timing.waited_ms
        else:
            at = self.aligner.next_deadline()
        if self.store is not None:
            at = self.next_poll if at is None else min(at, self.next_poll)
        return None if at is None else datetime.fromtimestamp(at / 1000, timezone.utc)

    def on_notify(self):
        now = _now_ms()
        if self.ticker is not None:
            due = self.aligner.due_ticks(now, int(self.timing.tick_s * 1000),
                                         self.timing.waited_ms)
            if due:
                self.ticker.tick(due, now)
        out = self._route(now)
        if self.store is not None and now >= self.next_poll:
            self.next_poll = now + self.timing.checkout_poll_ms
            out += self._checkouts_due()
        return out, StatefulBatchLogic.RETAIN

    def _checkouts_due(self) -> list:
        """Work that takes in the holds of SKUs whose checkout holds changed. (Not while a
        restarted engine reruns what the run before it decided: they are taken in after.)"""
        live = takes_live_holds(due_position(self.router.seq), self.store.redo_until)
        work = self.router.wake(self.store.due() if live else [])
        read_at = time.time()
        return [(str(bucket), BucketWork(read_at, items)) for bucket, items in work.items()]

    def on_eof(self):
        # The input ended (a drain, a file): nothing more will come, release everything. On a
        # graceful stop it did not: what is buffered waits in the snapshot for the next start.
        if not stop_requested():
            self.aligner.end_all()
            out = self._route(_now_ms())
            dead = self.router.end()  # an event held back for its time: nothing will confirm it
            if dead:
                if self.observer is not None:
                    self.observer.routed([], dead, 0, 0)
                out.append((DEAD_LETTERS, dead))
            return out, StatefulBatchLogic.RETAIN
        return self._route(_now_ms()), StatefulBatchLogic.RETAIN

    def _route(self, now: int) -> list:
        items = self.aligner.release(now)
        if self.aligner.late_by != self.late_seen:
            self._report_late()
        if not items:
            return []
        read_at = time.time()
        duplicates = self.router.duplicates
        work, dead = self.router.route(items)
        if self.observer is not None:
            self.observer.routed(items, dead, duplicates, self.router.duplicates)
        out = [(str(bucket), BucketWork(read_at, lst)) for bucket, lst in work.items()]
        if dead:
            out.append((DEAD_LETTERS, dead))
        return out

    def _report_late(self) -> None:
        seen = self.late_seen
        new = {p: n - seen.get(p, 0) for p, n in self.aligner.late_by.items()
               if n != seen.get(p, 0)}
        self.late_seen = dict(self.aligner.late_by)
        log.warning("late_events", extra={
            "by_partition": new, "total": self.aligner.late,
            "idle_wait_s": self.timing.idle_wait_s,
            "why": "their partition was passed over after the idle wait; "
                   "they apply in arrival order"})
        if self.observer is not None:
            self.observer.late(new)

    def snapshot(self):
        if not self.durable:
            return None
        state = pickle.dumps((self.aligner, self.router), protocol=5)
        # Once per epoch (the one sequencer): the snapshot's rhythm, for whoever asks for it.
        log.debug("snapshot", extra={"step": "align_and_route", "bytes": len(state),
                                     "clock_ms": self.router.clock_ms})
        return state


def _now_ms() -> int:
    return int(time.time() * 1000)


def _log_guard(decisions: list) -> None:
    """What the snapshot guard decided in a batch: rare, one line each."""
    for d in decisions:
        log.info(f"snapshot_{d.what}", extra={"snapshot_event_id": d.snapshot_event_id,
                                              "sku": d.sku, "node": d.node})


class LedgerLogic(StatefulBatchLogic):
    """One per bucket: applies its work and returns outputs encoded, grouped by stream.

    With a read-model `store` (live mode), the step before fenced the batch's SKUs and read
    their live checkout holds, which apply first; the step after writes the views this one
    hands on (both in `read_model_steps.py`). A timer every second writes the heartbeat, and
    rewrites this bucket's whole read model if Redis was away or lost it since it was last
    whole, batch or no batch.
    """

    CHECK_EVERY = timedelta(seconds=1)

    def __init__(self, config: EngineConfig, durable: bool, resume: bytes | None,
                 store: ReadModel | None = None, observer: Observer | None = None):
        self.ledger = Ledger.restore(resume, config) if resume is not None else Ledger(config)
        if durable:  # a bucket new since the snapshot may still follow a run that died
            self.ledger.republished = set()
        self.durable = durable
        self.store = store
        self.observer = observer

    def on_batch(self, batches: list[BucketWork]):
        read_at = min(b.read_at for b in batches)
        if self.store is not None and fence_lapsing(self.store, read_at, time.time()):
            batches = refenced(self.store, batches, read_at)
        if len(batches) == 1:
            items = with_intakes(batches[0].items, batches[0].intakes)
        else:
            items = with_intakes([w for b in batches for w in b.items],
                                 [t for b in batches for t in b.intakes or ()])
        shortage = self.ledger.shortage_units
        outputs = self.ledger.apply_batch(items)
        if self.ledger.guard_decisions:
            _log_guard(self.ledger.guard_decisions)
        by_stream = encode_by_stream(outputs)
        if self.store is not None and self.ledger.taken:  # what it took from Redis: journalled
            by_stream[INTAKE_JOURNAL] = [_ENCODE(t) for t in self.ledger.taken]
        if self.observer is not None:
            oldest = items[0][2].ts.timestamp() if items else None
            self.observer.applied(self.ledger, outputs, by_stream, read_at, oldest, shortage)
        out = list(by_stream.items())
        if self.store is not None:  # written by the next step, with every other bucket's
            out.append((READ_MODEL, views_to_write(self.store, id(self), self.ledger, outputs)))
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self):
        return datetime.now(timezone.utc) + self.CHECK_EVERY if self.store is not None else None

    def on_notify(self):
        store = self.store
        if not store.is_whole(id(self)):
            write_views(store, [views_to_write(store, id(self), self.ledger, [])])
        store.beat(at_most_every_s=0.5)  # once per process, whichever buckets ask
        return [], StatefulBatchLogic.RETAIN

    def snapshot(self):
        if self.observer is None:
            return self.ledger.snapshot() if self.durable else None
        started = time.perf_counter()
        state = self.ledger.snapshot() if self.durable else None
        self.observer.state(self.ledger, time.perf_counter() - started)
        return state
