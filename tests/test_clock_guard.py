"""Wrong but well-formed input: a far-future timestamp, an unknown order, an id reused.

One event stamped in 2099 must not move the engine's clock (clock_guard.py): the run decides
as if it had never come, plus its dead letter `ts_implausible`. A payment or cancellation of
an order the engine does not know, an event id reused on other content, an order resent with
other lines: each is refused as a dead letter with its reason, never dropped unseen.
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timedelta, timezone

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockflow.connectors.codec import decode_lines
from stockflow.ops.config import Config
from stockflow.ops.generate import Scenario, write_jsonl
from stockflow.ops.replay import replay
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import ClockTick, StockAdjusted
from stockflow.state.outputs import STREAMS, Alert, DeadLetter, OrderStatus

from .live_runs import LiveRun, commands_and_statuses, replay_of_recorded
from .scenario import DAY, Sim
from .servers import unique_prefix
from .test_dataflow import all_outputs, decisions, final_availability, nonzero

ENCODE = msgspec.json.Encoder().encode
FAR = datetime(2099, 1, 1, tzinfo=timezone.utc)


def trace_lines(events: int, seed: int = 3) -> list[bytes]:
    """A generated trace, its lines (no malformed ones: the comparisons stay simple)."""
    buf = io.BytesIO()
    write_jsonl(Scenario(events=events, seed=seed, skus=60, stores=6, malformed_rate=0.0), buf)
    return [line for line in buf.getvalue().split(b"\n") if line.strip()]


def far_adjustment(lines: list[bytes], at: int) -> bytes:
    """A well-formed `stock.adjusted` stamped 2099, of a SKU and node the trace has."""
    events = decode_lines(lines, "trace", 1)
    sample = next(e for e in events if type(e) is StockAdjusted)
    return ENCODE(msgspec.structs.replace(sample, event_id=f"far-{at}", ts=FAR))


def read_streams(out_dir) -> dict[str, bytes]:
    found = {}
    for stream in STREAMS:
        with open(os.path.join(out_dir, f"{stream}.jsonl"), "rb") as f:
            found[stream] = f.read()
    return found


def test_a_2099_stock_event_in_a_replay_changes_nothing_but_its_dead_letter(tmp_path):
    lines = trace_lines(4_000)
    at = len(lines) // 2
    bad = far_adjustment(lines, at)
    clean, dirty = tmp_path / "clean.jsonl", tmp_path / "dirty.jsonl"
    clean.write_bytes(b"\n".join(lines) + b"\n")
    dirty.write_bytes(b"\n".join(lines[:at] + [bad] + lines[at:]) + b"\n")
    # One line a chunk: the inserted line shifts no other line into another batch (availability
    # is coalesced per batch, and buckets' outputs interleave by batch).
    engine = Config().engine
    replay(str(clean), str(tmp_path / "clean"), engine, chunk_lines=1, show_progress=False)
    replay(str(dirty), str(tmp_path / "dirty"), engine, chunk_lines=1, show_progress=False)
    before, after = read_streams(tmp_path / "clean"), read_streams(tmp_path / "dirty")
    for stream in STREAMS:
        if stream != "dead-letter":
            assert after[stream] == before[stream], stream
    added = after["dead-letter"].replace(before["dead-letter"], b"", 1).splitlines()
    (letter,) = [msgspec.json.decode(x, type=DeadLetter) for x in added]
    assert (letter.cause, letter.reason, letter.source) == (f"far-{at}", "ts_implausible",
                                                            "engine")
    assert msgspec.json.decode(letter.raw)["ts"].startswith("2099-01-01")
    assert before["order-status"]  # the trace decided something to compare


def live_with_one_far_event(kafka_brokers, redis_url, tmp_path, **env):
    """A generated trace with one 2099 stock event in its middle, drained by live mode (one
    input partition, settings from `env`); the run, its outputs, the refused event's id, and
    the outputs of a replay of the trace without it."""
    lines = trace_lines(4_000, seed=5)
    at = len(lines) // 2
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.env.update(env)
    run.create_topics({})
    run.produce(lines[:at] + [far_adjustment(lines, at)] + lines[at:])
    run.drain()
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(lines) + b"\n")
    replay(str(clean), str(tmp_path / "clean"), EngineConfig(), show_progress=False)
    return run, run.decoded(), f"far-{at}", all_outputs(tmp_path / "clean")


def assert_as_without_it(live: list, expected: list) -> None:
    rest = [o for o in live if type(o) is not DeadLetter]
    assert decisions(rest) == decisions(expected)
    assert nonzero(final_availability(rest)) == nonzero(final_availability(expected))
    assert any(type(o) is OrderStatus for o in expected)


def test_a_2099_stock_event_in_live_mode_is_refused_for_its_record_time(
        kafka_brokers, redis_url, tmp_path):
    """Stamped decades after its Kafka record: `ts_ahead`, at the edge, and the replay of
    the recorded topics (with their record times) refuses it alike."""
    run, live, far, expected = live_with_one_far_event(kafka_brokers, redis_url, tmp_path)
    letters = [o for o in live if type(o) is DeadLetter]
    assert [(x.cause, x.reason) for x in letters] == [(far, "ts_ahead")]
    assert_as_without_it(live, expected)
    recorded, _ = replay_of_recorded(run)
    assert [(o.cause, o.reason) for o in recorded if type(o) is DeadLetter] == [
        (far, "ts_ahead")]
    assert commands_and_statuses(recorded) == commands_and_statuses(live)


def test_a_2099_stock_event_in_live_mode_is_held_back_by_the_clock_guard(
        kafka_brokers, redis_url, tmp_path):
    """With `max_ahead_s` out of the way, the clock guard refuses it (`ts_implausible`)."""
    run, live, far, expected = live_with_one_far_event(
        kafka_brokers, redis_url, tmp_path, STOCKFLOW_RUN_MAX_AHEAD_S="1e12")
    letters = [o for o in live if type(o) is DeadLetter]
    assert [(x.cause, x.reason) for x in letters] == [(far, "ts_implausible")]
    assert_as_without_it(live, expected)
    recorded, _ = replay_of_recorded(run)
    assert commands_and_statuses(recorded) == commands_and_statuses(live)


def far_futures(events: list, data) -> tuple[int, object]:
    """Where to insert one event stamped far ahead of the trace, and that event."""
    last = max(e.ts for e in events)
    at = data.draw(st.integers(1, len(events)), label="at")
    ahead_days = data.draw(st.floats(91, 60_000), label="days ahead of the trace's end")
    sample = data.draw(st.sampled_from(events), label="copied event")
    ev = msgspec.structs.replace(sample, event_id="far-future",
                                 ts=last + timedelta(days=ahead_days))
    return at, ev


EVENTS = [e for e in decode_lines(trace_lines(1_500, seed=11), "trace", 1)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_far_future_event_anywhere_changes_no_other_decision(data):
    at, ev = far_futures(EVENTS, data)
    config = EngineConfig(buckets=4)
    clean = Engine(config)
    expected = clean.process(list(EVENTS)) + clean.end()
    dirty = Engine(config)
    got = dirty.process(EVENTS[:at] + [ev] + EVENTS[at:]) + dirty.end()
    letters = [o for o in got if type(o) is DeadLetter and o.cause == "far-future"]
    assert [x.reason for x in letters] == ["ts_implausible"]
    assert [o for o in got if o is not letters[0]] == expected
    assert not any(type(o) is Alert and o.kind == "clock_jump" for o in got)


def test_a_jump_the_next_event_confirms_moves_the_clock_and_is_alerted():
    sim = Sim()
    e = sim.ev
    sim.feed(e.node("A"), e.channel("web"), e.snapshot("K", "A", 5))
    later = e.at(200 * DAY)
    out = sim.feed(e.adjust("K", "A", 1, ts=later, event_id="back"),
                   ClockTick(event_id="t1", ts=later + timedelta(seconds=1)))
    assert not [o for o in out if type(o) is DeadLetter]
    (alert,) = [o for o in out if type(o) is Alert and o.kind == "clock_jump"]
    assert alert.cause == "back" and "200.0 days" in alert.detail
    assert sim.engine.router.clock_ms == int((later.timestamp() + 1) * 1000)
    assert sim.pos("K", "A").on_hand == 6


def test_a_held_event_at_the_end_of_the_input_is_refused():
    sim = Sim()
    e = sim.ev
    sim.feed(e.node("A"), e.snapshot("K", "A", 5))
    assert sim.feed(e.adjust("K", "A", 1, ts=FAR, event_id="far")) == []
    (letter,) = sim.engine.end()
    assert (letter.cause, letter.reason) == ("far", "ts_implausible")
    assert sim.pos("K", "A").on_hand == 5


def test_a_held_event_survives_a_snapshot_of_the_router():
    import pickle

    sim = Sim()
    e = sim.ev
    sim.feed(e.node("A"), e.snapshot("K", "A", 5), e.adjust("K", "A", 1, ts=FAR, event_id="far"))
    router = pickle.loads(pickle.dumps(sim.engine.router))
    assert router.guard.held.event_id == "far"
    _, dead = router.route([e.adjust("K", "A", 1, ts=10)])
    assert [(d.cause, d.reason) for d in dead] == [("far", "ts_implausible")]


# == unknown orders =======================================================================


def shop() -> Sim:
    sim = Sim()
    e = sim.ev
    sim.feed(e.node("A"), e.channel("web"), e.snapshot("K", "A", 10))
    return sim


def refusals(out) -> list[tuple[str, str]]:
    return [(o.cause, o.reason) for o in out if type(o) is DeadLetter]


def test_a_payment_or_cancellation_of_an_unknown_order_is_a_dead_letter_with_its_raw():
    sim = shop()
    e = sim.ev
    paid, cancelled = e.paid("NOPE", event_id="p"), e.cancelled("NOPE", event_id="c")
    out = sim.feed(paid, cancelled)
    assert refusals(out) == [("p", "unknown_order"), ("c", "unknown_order")]
    assert [o.source for o in out] == ["engine", "engine"]
    assert [o.raw.encode() for o in out] == [ENCODE(paid), ENCODE(cancelled)]


def test_a_payment_sent_again_once_its_order_exists_applies():
    sim = shop()
    e = sim.ev
    paid = e.paid("O1", event_id="p")
    assert refusals(sim.feed(paid)) == [("p", "unknown_order")]
    sim.feed(e.order("O1", [("K", 2)]))
    again = msgspec.structs.replace(paid, event_id="p-again", ts=e.at(60))
    out = sim.feed(again)
    assert [(o.status, o.cause) for o in out if type(o) is OrderStatus] == [
        ("allocated", "p-again")]


# == dedup: true repeats only ===============================================================


def test_a_true_repeat_is_dropped_and_counted():
    sim = shop()
    e = sim.ev
    order = e.order("O1", [("K", 2)], event_id="o")
    sim.feed(order)
    assert sim.feed(order) == []
    assert sim.engine.router.duplicates == 1


def test_an_event_id_reused_on_other_content_is_refused_not_dropped():
    sim = shop()
    e = sim.ev
    sim.feed(e.order("O1", [("K", 2)], event_id="x-1"))
    out = sim.feed(e.order("O-9", [("K", 1)], paid=True, event_id="x-1"))
    assert refusals(out) == [("x-1", "event_id_reused")]
    assert msgspec.json.decode(out[0].raw)["order_id"] == "O-9"
    assert sim.engine.router.duplicates == 0


def test_an_order_resent_with_other_lines_is_a_conflict_and_the_same_lines_a_repeat():
    sim = shop()
    e = sim.ev
    sim.feed(e.order("O1", [("K", 3)]))
    assert sim.feed(e.order("O1", [("K", 3)], event_id="same")) == []
    assert sim.engine.router.duplicates == 1
    out = sim.feed(e.order("O1", [("K", 30)], event_id="other"))
    assert refusals(out) == [("other", "order_conflict")]
    assert msgspec.json.decode(out[0].raw)["lines"][0]["qty"] == 30
    assert sim.line("K", "O1").qty == 3
