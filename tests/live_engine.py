"""The engine as the live dataflow drives it, without Bytewax or Kafka: router, read-model
fence, ledger buckets and writes against a real Redis; and checkouts through the reservation
API. For the reservation and checkout-intake tests."""

from __future__ import annotations

import pickle
import threading
import time
import uuid

from stockflow.connectors.redis_store import ReadModelStore
from stockflow.connectors.reservations import ReservationRefused, Reservations
from stockflow.dataflows.logic import LedgerLogic
from stockflow.dataflows.ports import BucketWork
from stockflow.dataflows.read_model_steps import fence, write
from stockflow.state.config import EngineConfig
from stockflow.state.outputs import INTAKE_JOURNAL
from stockflow.state.routing import Router
from stockflow.state.work import due_position, takes_live_holds

from .scenario import Script


class LiveEngine:
    """Router + ledger buckets driven as the dataflow drives them, with the Redis store.

    Everything it was fed, in order, is `fed`: the merged input of a live run (what a replay
    of the recorded topics would read); its outputs, `outputs`, and the checkout intakes it
    journalled, `journal` (both encoded)."""

    def __init__(self, client, prefix: str, stale_after_s: float = 5.0,
                 resume: tuple[bytes, dict[int, bytes]] | None = None, observer=None):
        self.config = EngineConfig(buckets=4)
        self.router = Router(self.config)
        self.store = ReadModelStore(client, prefix, stale_after_s=stale_after_s)
        self.store.start()  # functions and this engine's mark, as `stockflow run` does
        self.buckets: dict[int, LedgerLogic] = {}
        self.observer = observer  # ops.metrics.Observer, to see the metrics a batch moves
        if resume is not None:  # as after a restart: the snapshots of the run before
            self.router = pickle.loads(resume[0])
            self.router.rewake(self.store.woken(due_position(self.router.seq)))
            self.buckets = {b: LedgerLogic(self.config, True, state, self.store)
                            for b, state in resume[1].items()}
        self.ev = Script()
        self.lock = threading.Lock()
        self.fed: list = []
        self.outputs: list[bytes] = []
        self.journal: list[bytes] = []

    def snapshot(self) -> tuple[bytes, dict[int, bytes]]:
        """What a snapshot of the dataflow keeps: the router's state and each bucket's."""
        return (pickle.dumps(self.router),
                {b: logic.ledger.snapshot() for b, logic in self.buckets.items()})

    def fenced(self, *events) -> list[tuple[int, BucketWork]]:
        """One batch routed and fenced, as the steps before the ledger leave it."""
        self.fed.extend(events)
        work, _ = self.router.route(list(events))
        return fence(self.store)([(bucket, BucketWork(time.time(), items))
                                  for bucket, items in sorted(work.items())])

    def feed(self, *events) -> list:
        """One batch: fenced, applied bucket by bucket, written, as the dataflow's steps do."""
        with self.lock:
            return self._apply(self.fenced(*events))

    def poll(self) -> list:
        """What the sequencer does every `checkout_poll_ms`: SKUs whose checkout holds
        changed are taken in, fenced, applied and written like a batch."""
        with self.lock:
            live = takes_live_holds(due_position(self.router.seq), self.store.redo_until)
            work = self.router.wake(self.store.due() if live else [])
            return self._apply(fence(self.store)([(bucket, BucketWork(time.time(), items))
                                                  for bucket, items in sorted(work.items())]))

    def _apply(self, routed) -> list:
        applied = []
        for bucket, bucket_work in routed:
            logic = self.buckets.get(bucket)
            if logic is None:
                logic = self.buckets[bucket] = LedgerLogic(self.config, False, None, self.store,
                                                           self.observer)
            applied.extend(logic.on_batch([bucket_work])[0])
        out = write(self.store)(applied)
        for stream, encoded in out:
            (self.journal if stream == INTAKE_JOURNAL else self.outputs).extend(encoded)
        return out

    def tick(self) -> None:
        """What the buckets' timers do every second."""
        for logic in self.buckets.values():
            logic.on_notify()

    def book(self, sku):
        for logic in self.buckets.values():
            if sku in logic.ledger.books:
                return logic.ledger.books[sku]
        raise KeyError(sku)


def setup_engine(client, stock: int, sku: str, **kw) -> tuple[LiveEngine, Reservations]:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    engine = LiveEngine(client, prefix, **kw)
    e = engine.ev
    engine.feed(e.node("A"), e.channel("web", hold_ttl_s=60), e.channel("mkt", hold_ttl_s=60))
    engine.feed(e.snapshot(sku, "A", stock))
    return engine, Reservations(client, prefix, busy_wait_s=5.0)


def try_reserve(api, sku, channel, qty, ttl_ms=60_000):
    hold_id = uuid.uuid4().hex
    try:
        api.reserve(sku, channel, qty, ttl_ms, hold_id)
        return hold_id
    except ReservationRefused as exc:
        assert exc.code == "SHORT", exc
        return None


