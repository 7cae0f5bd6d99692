"""Checkout holds taken in by the engine: soon after a grant or a release whatever else the SKU
sees, named for what happened to them, journalled where they applied so that a replay of the
recorded input decides as live did, and taken in again exactly so by a restarted engine.
Against a real Redis, with the engine driven as the live dataflow drives it (`live_engine`)."""

from __future__ import annotations

import time
import uuid

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockflow.connectors.codec import decode_message
from stockflow.connectors.read_model_reader import ReadModelReader
from stockflow.connectors.reservations import ReservationRefused, Reservations, install
from stockflow.connectors.recorded_input import with_journal
from stockflow.ops.metrics import REGISTRY, Observer
from stockflow.ops.sku_view import report_table
from stockflow.state.book import SkuBook
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import CheckoutHold, CheckoutTaken
from stockflow.state.ledger import Ledger
from stockflow.state.lines import HELD
from stockflow.state.outputs import AvailabilityChanged, DeadLetter, OrderStatus, OutputEvent

from .live_engine import LiveEngine, setup_engine
from .scenario import T0, Sim, older_snapshot
from .test_dataflow import nonzero

DECODE = msgspec.json.Decoder(OutputEvent).decode
ENCODE = msgspec.json.Encoder().encode


@pytest.fixture()
def client(redis_url):
    c = redis.Redis.from_url(redis_url, socket_timeout=5)
    install(c)
    return c


def statuses(engine: LiveEngine, order_id: str) -> list[tuple[str, str | None]]:
    return [(o.status, o.reason) for o in map(DECODE, engine.outputs)
            if type(o) is OrderStatus and o.order_id == order_id]


def published(client, api: Reservations, sku: str, channel: str) -> int:
    return int(client.hget(api.keys.avail(sku), channel) or 0)


# -- published at once, whatever else the SKU sees ------------------------------------------


def test_a_grant_on_a_quiet_sku_is_published_at_the_next_poll(client):
    engine, api = setup_engine(client, 10, "Q")
    api.reserve("Q", "web", 3, 60_000, "h1")
    assert published(client, api, "Q", "web") == 10  # not yet taken in...
    assert api.available("Q", "web") == 7  # ...but a reservation already counts it
    engine.poll()  # no event of Q came
    assert published(client, api, "Q", "web") == 7
    assert published(client, api, "Q", "mkt") == 7  # every channel sees it gone
    assert int(client.get(api.keys.pending("Q"))) == 0  # absorbed: counted once
    assert statuses(engine, "checkout:h1") == [("held", None)]
    changed = [o for o in map(DECODE, engine.outputs)
               if type(o) is AvailabilityChanged and o.sku == "Q"]
    assert {(o.channel, o.available, o.max_line_qty) for o in changed[-2:]} == {
        ("web", 7, 7), ("mkt", 7, 7)}
    assert engine.poll() == []  # nothing else is due
    [taken] = [msgspec.json.decode(raw, type=CheckoutTaken) for raw in engine.journal]
    assert (taken.sku, taken.n, [h.hold_id for h in taken.holds]) == ("Q", 1, ["h1"])


def test_the_read_side_shows_the_holds_not_yet_taken_in(client):
    engine, api = setup_engine(client, 10, "P")
    reader = ReadModelReader(client, api.keys.prefix)
    api.reserve("P", "web", 3, 60_000, "h1")
    report = reader.sku("P")
    assert (report.available["web"], report.checkout_pending) == (10, 3)
    assert "checkout holds not taken in yet: 3 units" in report_table(report)
    engine.poll()
    report = reader.sku("P")
    assert (report.available["web"], report.checkout_pending) == (7, 0)
    assert "not taken in" not in report_table(report)


def test_a_released_hold_is_published_at_once_and_said_released(client):
    engine, api = setup_engine(client, 10, "R")
    api.reserve("R", "web", 4, 60_000, "h1")
    engine.poll()
    assert api.release("R", "h1")
    engine.poll()
    assert published(client, api, "R", "web") == 10
    assert statuses(engine, "checkout:h1") == [("held", None), ("cancelled", "hold_released")]


def test_held_units_count_checkout_holds_as_they_are_taken_in(client):
    engine = LiveEngine(client, f"t{uuid.uuid4().hex[:8]}", observer=Observer())
    api = Reservations(client, engine.store.keys.prefix)
    e = engine.ev
    engine.feed(e.node("A"), e.channel("web", hold_ttl_s=60), e.snapshot("M", "A", 10))
    released = REGISTRY.get_sample_value("stockflow_holds_released_total") or 0
    api.reserve("M", "web", 3, 60_000, "h1")
    api.reserve("M", "web", 2, 60_000, "h2")
    engine.poll()
    assert REGISTRY.get_sample_value("stockflow_held_units") == 5
    api.release("M", "h1")
    engine.poll()
    assert REGISTRY.get_sample_value("stockflow_held_units") == 2
    assert REGISTRY.get_sample_value("stockflow_holds_released_total") == released + 1


def test_an_expired_hold_is_published_when_it_runs_out_without_traffic(client):
    engine, api = setup_engine(client, 10, "X")
    api.reserve("X", "web", 4, 300, "h1")
    engine.poll()
    assert published(client, api, "X", "web") == 6
    assert engine.poll() == []  # not due before it runs out
    time.sleep(0.35)
    engine.poll()
    assert published(client, api, "X", "web") == 10
    assert statuses(engine, "checkout:h1") == [("held", None), ("expired", "hold_expired")]


def test_a_sku_with_traffic_takes_its_holds_in_before_its_events(client):
    engine, api = setup_engine(client, 10, "T")
    e = engine.ev
    api.reserve("T", "web", 8, 60_000, "h1")
    engine.feed(e.order("O1", [("T", 5)], channel="mkt", paid=True))  # before any poll
    assert statuses(engine, "checkout:h1") == [("held", None)]
    assert statuses(engine, "O1")[0][0] == "rejected"  # the checkout came first
    assert engine.poll() == []  # taken in already: nothing due


def test_a_journalled_hold_that_no_longer_fits_is_rejected_and_said_so():
    """What a replay does with an intake whose units are no longer there (stock fell): the
    hold is not placed, and its line says so (every line has a status)."""
    sim = Sim()
    e = sim.ev
    sim.feed(e.node("A"), e.channel("web"), e.snapshot("K", "A", 2))
    taken = CheckoutTaken(event_id="intake:K:1", ts=T0, sku="K", at=9, n=1, holds=[
        CheckoutHold(hold_id="h1", channel="web", qty=3, expires_ms=10**13)])
    out = sim.feed(taken)
    assert [(o.order_id, o.status, o.reason) for o in out if type(o) is OrderStatus] == [
        ("checkout:h1", "rejected", "no_stock")]
    assert sim.feed(taken) == []  # applied once


# -- replayed from the journal; taken in again exactly by a restart -------------------------

SKUS = ("S1", "S2")
op = st.one_of(
    st.tuples(st.just("order"), st.sampled_from(SKUS), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("reserve"), st.sampled_from(SKUS), st.integers(1, 3)),
    st.tuples(st.just("release"), st.integers(0, 20)),
    st.tuples(st.just("adjust"), st.sampled_from(SKUS), st.integers(-2, 3)),
    st.tuples(st.just("pay"), st.integers(0, 20)),
    st.tuples(st.just("poll")),
    st.tuples(st.just("snapshot")),
    st.tuples(st.just("crash"), st.integers(1, 3)),
    st.tuples(st.just("duplicate"), st.integers(0, 40)),
)


class Run:
    """Checkouts and orders against an engine that may crash: what Kafka and Redis keep
    (the merged input, the journal, the outputs, every run's) outlives each engine."""

    def __init__(self, client):
        self.client = client
        self.prefix = f"t{uuid.uuid4().hex[:8]}"
        self.engine = LiveEngine(client, self.prefix)
        self.api = Reservations(client, self.prefix, busy_wait_s=5.0)
        self.input: list = []  # every input message, in merged order
        self.outputs: list[bytes] = []
        self.journal: list[bytes] = []
        self.holds: list[tuple[str, str]] = []  # (sku, hold_id) granted
        self.orders: list[str] = []
        e = self.engine.ev
        self.feed([e.node("A"), e.channel("web", hold_ttl_s=600), e.channel("mkt", hold_ttl_s=600)])
        self.feed([e.snapshot(sku, "A", 6) for sku in SKUS])
        self.saved = self.engine.snapshot(), len(self.input)

    def feed(self, events: list) -> None:
        self.input.extend(events)
        self.engine.feed(*events)
        self._collect()

    def _collect(self) -> None:
        self.outputs += self.engine.outputs
        self.journal += self.engine.journal
        self.engine.outputs, self.engine.journal = [], []

    def step(self, action) -> None:
        e, kind = self.engine.ev, action[0]
        if kind == "order":
            order_id = f"O{len(self.orders)}"
            self.orders.append(order_id)
            self.feed([e.order(order_id, [(action[1], action[2])], channel="mkt",
                               paid=action[3])])
        elif kind == "reserve":
            hold_id = f"h{len(self.holds)}"
            try:
                self.api.reserve(action[1], "web", action[2], 600_000, hold_id)
                self.holds.append((action[1], hold_id))
            except ReservationRefused as exc:
                assert exc.code in ("SHORT", "LINE"), exc
        elif kind == "release" and self.holds:
            self.api.release(*self.holds[action[1] % len(self.holds)])
        elif kind == "adjust":
            self.feed([e.adjust(action[1], "A", action[2])])
        elif kind == "pay" and self.orders:
            self.feed([e.paid(self.orders[action[1] % len(self.orders)])])
        elif kind == "duplicate":  # a message delivered twice
            self.feed([self.input[action[1] % len(self.input)]])
        elif kind == "poll":
            self.engine.poll()
            self._collect()
        elif kind == "snapshot":
            self.saved = self.engine.snapshot(), len(self.input)
        elif kind == "crash":
            self.crash(action[1])

    def crash(self, batch: int) -> None:
        """The engine dies; a new one resumes from the last snapshot and reads the input
        after it again, in batches of `batch` messages (not as the first run batched it)."""
        state, at = self.saved
        self.engine = LiveEngine(self.client, self.prefix, resume=state)
        again, self.input = self.input[at:], self.input[:at]
        for i in range(0, len(again), batch):
            self.feed(again[i:i + batch])

    def settle(self) -> None:
        self.engine.poll()
        self._collect()


def replayed(run: Run) -> tuple[list, Engine]:
    """The pure engine over the recorded input with the journal in its place."""
    raw = with_journal([ENCODE(ev) for ev in run.input], run.journal)
    engine = Engine(run.engine.config)
    return engine.process([decode_message(m, "recorded") for m in raw]), engine


def effects(outputs: list) -> set[bytes]:
    return {ENCODE(o) for o in outputs if type(o) not in (AvailabilityChanged, DeadLetter)}


def last_availability(outputs: list) -> dict:
    return nonzero({(o.sku, o.channel): o.available for o in outputs
                    if type(o) is AvailabilityChanged})


@given(st.lists(op, min_size=5, max_size=40))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_checkouts_racing_orders_through_crashes_decide_as_the_replay_of_what_was_recorded(
        client, actions):
    run = Run(client)
    for action in actions:
        run.step(action)
    run.settle()
    live = [DECODE(raw) for raw in run.outputs]
    outputs, engine = replayed(run)
    assert effects(live) == effects(outputs)  # nothing lost, nothing decided otherwise
    assert last_availability(live) == last_availability(outputs)
    for sku in SKUS:  # every hold Redis granted is the engine's commitment, and no more
        book = dict(engine.books()).get(sku)
        held = {o.removeprefix("checkout:") for o, lines in (book.lines if book else {}).items()
                if o.startswith("checkout:") and lines["1"].status == HELD}
        assert held == {h.decode() for h in client.hkeys(run.api.keys.checkouts(sku))}
        for pos in (book.positions.values() if book else ()):
            assert pos.over_committed == 0


def test_a_restart_takes_in_no_hold_where_the_run_before_went_without(client):
    """The rerun after a crash must not take in a hold granted after the run before it went
    past a place without it: that run's decisions there are published. With the log's horizon
    forgotten (as a Redis that lost it), the rerun decides otherwise; with it, as before."""
    for forget in (False, True):
        run = Run(client)
        run.step(("order", "S1", 6, True))  # O0 takes all 6...
        run.step(("adjust", "S1", 1))  # ...one comes back...
        run.api.reserve("S1", "web", 1, 600_000, "late")  # ...and a checkout takes it; then
        if forget:  # the engine dies before taking it in
            run.client.delete(run.engine.store.keys.intake_at)
        run.crash(1)
        run.settle()
        live = effects([DECODE(raw) for raw in run.outputs])
        outputs, _ = replayed(run)
        if forget:  # O0 allocated by the first run, rejected by the second
            assert live != effects(outputs)
        else:
            assert live == effects(outputs)
            assert statuses_of(outputs, "O0") == [("allocated", None)]


def test_a_restart_batching_otherwise_takes_each_hold_in_where_it_was_taken(client):
    run = Run(client)
    run.step(("order", "S1", 6, True))  # O0 takes all 6
    run.step(("adjust", "S1", 3))  # 3 come back...
    run.api.reserve("S1", "web", 3, 600_000, "h")  # ...a checkout takes them...
    run.step(("order", "S1", 1, False))  # ...and is taken in before O1, which finds none
    run.crash(3)  # O0, the adjustment and O1 again, in one batch
    live = effects([DECODE(raw) for raw in run.outputs])
    outputs, _ = replayed(run)
    assert live == effects(outputs)
    assert statuses_of(outputs, "O0") == [("allocated", None)]
    assert statuses_of(outputs, "checkout:h") == [("held", None)]
    assert statuses_of(outputs, "O1") == [("rejected", "no_stock")]


def test_a_restart_takes_in_again_what_was_taken_in_quietly_then_what_changed_since(client):
    run = Run(client)
    run.api.reserve("S1", "web", 1, 600_000, "h0")
    run.step(("poll",))  # h0 taken in, S1 having no other traffic
    run.api.release("S1", "h0")
    run.api.reserve("S1", "web", 2, 600_000, "h1")
    run.crash(1)  # nothing to read again: the snapshot is from before h0
    run.settle()
    live = [DECODE(raw) for raw in dict.fromkeys(run.outputs)]  # a rerun repeats some
    outputs, _ = replayed(run)
    assert effects(live) == effects(outputs)
    assert statuses_of(live, "checkout:h0") == [("held", None), ("cancelled", "hold_released")]
    assert statuses_of(live, "checkout:h1") == [("held", None)]


def statuses_of(outputs: list, order_id: str) -> list[tuple[str, str | None]]:
    return [(o.status, o.reason) for o in outputs
            if type(o) is OrderStatus and o.order_id == order_id]


def test_an_older_snapshot_restores_with_no_intake_applied():
    ledger = Ledger(EngineConfig())
    ledger.books["K"] = SkuBook(intake_n=3)
    assert Ledger.restore(ledger.snapshot(), EngineConfig()).books["K"].intake_n == 3
    older = older_snapshot(ledger, "intake_n")  # written before books kept it
    assert Ledger.restore(older, EngineConfig()).books["K"].intake_n == 0
