"""Event-time alignment: the merged order depends on what the partitions hold, never on when
their events arrive; the engine fed partitions in any arrival order decides as a replay of
the merged order does."""

from __future__ import annotations

import pickle
import zlib
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from stockflow.state.alignment import Aligner, merged
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import ClockTick, Malformed, StockAdjusted
from stockflow.state.ledger import Ledger
from stockflow.state.outputs import AvailabilityChanged

from .test_promise import PROPERTY, encoded, histories

T0 = datetime(2026, 11, 11, tzinfo=timezone.utc)


def ev(i: int, seconds: float, part: str = "p") -> StockAdjusted:
    return StockAdjusted(event_id=f"{part}-{i}", ts=T0 + timedelta(seconds=seconds), sku="K",
                         node="N", delta=1, reason="count")


@st.composite
def partitioned(draw, max_parts=4):
    """Partitions of events whose times mostly rise, sometimes step back, often tie."""
    parts = []
    for p in range(draw(st.integers(1, max_parts))):
        t, events = 0, []
        for i in range(draw(st.integers(0, 12))):
            t += draw(st.integers(-2, 3))
            events.append(ev(i, t, f"p{p}"))
        parts.append(events)
    return parts


def arrival(data, parts: list[list], ends: bool):
    """Chunks of the partitions in a random interleaving, each partition's own order kept."""
    pending = {f"p{i}": list(events) for i, events in enumerate(parts)}
    while pending:
        name = data.draw(st.sampled_from(sorted(pending)))
        events = pending[name]
        n = data.draw(st.integers(min(1, len(events)), len(events)))
        chunk, pending[name] = events[:n], events[n:]
        done = not pending[name]
        yield name, chunk, ends and done
        if done:
            del pending[name]


@PROPERTY
@given(partitioned(), st.data())
def test_merged_order_does_not_depend_on_arrival(parts, data):
    aligner = Aligner([f"p{i}" for i in range(len(parts))])
    out = []
    for name, chunk, end in arrival(data, parts, ends=True):
        aligner.add(name, chunk, 0, end)
        out.extend(aligner.release(0))
    aligner.end_all()
    out.extend(aligner.release(0))
    assert out == merged(parts)
    assert aligner.late == 0 and aligner.buffered == 0


@PROPERTY
@given(partitioned(), st.data())
def test_nothing_leaves_before_every_partition_has_spoken(parts, data):
    """Without ends, what has left is always a prefix of the merged order."""
    aligner = Aligner([f"p{i}" for i in range(len(parts))])
    out = []
    for name, chunk, _ in arrival(data, parts, ends=False):
        aligner.add(name, chunk, 0)
        out.extend(aligner.release(0))
        assert out == merged(parts)[:len(out)]


def test_ties_go_to_the_partition_ranked_first():
    a = Aligner(["master", "orders"])
    a.add("orders", [ev(1, 5, "o")], 0)
    assert a.release(0) == []  # master has said nothing yet
    a.add("master", [ev(1, 5, "m"), ev(2, 6, "m")], 0)
    assert [e.event_id for e in a.release(0)] == ["m-1", "o-1"]


def test_an_event_stamped_earlier_keeps_its_place_in_its_partition():
    parts = [[ev(1, 10, "a"), ev(2, 2, "a")], [ev(1, 5, "b")]]
    assert [e.event_id for e in merged(parts)] == ["b-1", "a-1", "a-2"]


def test_a_far_future_stamp_does_not_send_the_rest_of_its_partition_to_the_back():
    """One event stamped 200 days ahead does not raise its partition's watermark (the router's
    clock guard judges it), so the partition's next events keep their places in the merge; a
    second far event right after it confirms that time, and then the watermark moves."""
    far = 200 * 86400
    parts = [[ev(1, 1, "a"), ev(2, far, "a"), ev(3, 4, "a")], [ev(1, 2, "b"), ev(2, 5, "b")]]
    order = ["a-1", "a-2", "b-1", "a-3", "b-2"]
    assert [e.event_id for e in merged(parts)] == order
    aligner = Aligner(["a", "b"])
    aligner.add("a", parts[0], 0)
    aligner.add("b", parts[1], 0, end=True)
    aligner.end_all()
    assert [e.event_id for e in aligner.release(0)] == order
    confirmed = [[ev(1, 1, "a"), ev(2, far, "a"), ev(3, far + 1, "a")], [ev(1, 2, "b")]]
    assert [e.event_id for e in merged(confirmed)] == ["a-1", "a-2", "b-1", "a-3"]


def test_malformed_messages_keep_their_place():
    bad = Malformed("{", "not json", "a:0:1")
    parts = [[ev(1, 1, "a"), bad, ev(2, 3, "a")], [ev(1, 2, "b")]]
    assert merged(parts) == [parts[0][0], bad, parts[1][0], parts[0][2]]


def test_a_partition_silent_past_the_idle_wait_is_passed_over_and_its_events_count_late():
    a = Aligner(["quiet", "busy"], idle_wait_ms=1000)
    a.add("busy", [ev(1, 5, "b")], now_ms=0)
    assert a.release(0) == []
    assert a.waiting_since == {"quiet": 0}
    assert a.next_deadline() == 1000
    assert a.release(999) == []
    assert [e.event_id for e in a.release(1000)] == ["b-1"]
    a.add("quiet", [ev(1, 1, "q")], now_ms=1500)  # behind what already left
    assert [e.event_id for e in a.release(1500)] == ["q-1"]
    assert (a.late, a.late_by) == (1, {"quiet": 1})
    a.add("busy", [ev(2, 6, "b")], now_ms=1600)
    assert a.release(1600) == []  # the quiet partition is waited for again
    a.add("quiet", [ClockTick(event_id="t", ts=T0 + timedelta(seconds=7))], now_ms=1700)
    assert [e.event_id for e in a.release(1700)] == ["b-2"]
    assert a.waiting_since == {"busy": 1700}  # the tick waits for busy to reach its time


def test_ticks_go_to_quiet_partitions_and_to_those_the_merge_waits_on():
    a = Aligner(["m", "o"], idle_wait_ms=5000)
    a.resumed(now_ms=0)
    a.add("o", [ev(1, 5, "o")], now_ms=10)
    a.release(10)  # waits on m since 10
    assert a.due_ticks(20, quiet_ms=1000, waited_ms=25) == []
    assert a.due_ticks(40, quiet_ms=1000, waited_ms=25) == ["m"]
    assert a.due_ticks(50, quiet_ms=1000, waited_ms=25) == []  # one per 25 ms at most
    assert a.due_ticks(100, quiet_ms=1000, waited_ms=25) == []  # the last one is not back
    a.add("m", [ev(1, 1, "m")], now_ms=110)  # data it had not handed over yet
    a.release(110)
    assert a.due_ticks(140, quiet_ms=1000, waited_ms=25) == ["m"]  # still behind: again
    assert a.due_ticks(1020, quiet_ms=1000, waited_ms=25) == ["m", "o"]  # a round: both quiet


def test_a_restored_aligner_waits_again_for_partitions_a_drain_had_ended():
    a = Aligner(["a", "b"])
    a.add("b", [], 0, end=True)
    a.add("a", [ev(1, 1, "a")], 0)
    assert len(a.release(0)) == 1
    b = pickle.loads(pickle.dumps(a))
    b.resumed(0)
    b.add("a", [ev(2, 2, "a")], 0)
    assert b.release(0) == []


# -- the whole engine -------------------------------------------------------------------------


def producer_partitions(events: list) -> dict[str, list]:
    """Events routed as platform teams produce them: master data on its own topic, stock by
    SKU and orders by order id over two partitions each (a resend goes where the original
    went)."""
    parts: dict[str, list] = {"master:0": [], "stock:0": [], "stock:1": [],
                              "orders:0": [], "orders:1": []}
    for e in events:
        tag = type(e).__struct_config__.tag
        if tag.startswith(("node.", "channel.")):
            parts["master:0"].append(e)
        elif tag.startswith("order."):
            parts[f"orders:{zlib.crc32(e.order_id.encode()) % 2}"].append(e)
        else:
            parts[f"stock:{zlib.crc32(e.sku.encode()) % 2}"].append(e)
    return parts


def decisions(outputs: list) -> tuple[list[bytes], dict]:
    """Every output but availability, and each (sku, channel)'s last availability."""
    last = {}
    for o in outputs:
        if type(o) is AvailabilityChanged:
            last[(o.sku, o.channel)] = o.available
    return encoded(outputs, with_availability=False), {k: v for k, v in last.items() if v}


@PROPERTY
@given(histories(), st.data())
def test_any_arrival_across_partitions_decides_as_the_merged_replay(events, data):
    parts = producer_partitions(events)
    config = EngineConfig(buckets=3)
    replayed = Engine(config).process(merged(list(parts.values())))

    names = list(parts)
    engine = Engine(config, names)
    crash_at = data.draw(st.integers(0, 40))
    out, step = [], 0
    pending = {n: list(es) for n, es in parts.items()}
    while pending:
        name = data.draw(st.sampled_from(sorted(pending)))
        n = data.draw(st.integers(min(1, len(pending[name])), len(pending[name])))
        chunk, pending[name] = pending[name][:n], pending[name][n:]
        end = not pending[name]
        if end:
            del pending[name]
        if data.draw(st.integers(0, 4)) == 0 and chunk:  # redelivered after a broker retry
            chunk = chunk + chunk[-1:]
        out.extend(engine.arrive(name, chunk, end))
        step += 1
        if step == crash_at:  # a crash: everything restarts from the snapshot bytes
            restored = Engine(config, names)
            restored.aligner = pickle.loads(pickle.dumps(engine.aligner))
            restored.router = pickle.loads(pickle.dumps(engine.router))
            restored.ledgers = {b: Ledger.restore(l.snapshot(), config)
                                for b, l in engine.ledgers.items()}
            engine = restored
    assert engine.aligner.buffered == 0 and engine.aligner.late == 0
    assert decisions(out) == decisions(replayed)


def test_late_events_are_logged_and_counted_once(caplog):
    from stockflow.connectors.chunks import Decoded
    from stockflow.dataflows.logic import AlignTiming, SequencerLogic
    from stockflow.ops.metrics import LATE_EVENTS, Observer

    logic = SequencerLogic(EngineConfig(), ["a", "b"], AlignTiming(idle_wait_s=0.001), False,
                           None, observer=Observer())
    logic.on_batch([Decoded("a", [ClockTick(event_id="x", ts=T0 + timedelta(seconds=5))])])
    logic.aligner.waiting_since = {"b": 0}  # waited since the epoch: long past the idle wait
    logic.on_notify()
    before = LATE_EVENTS.labels("b")._value.get()
    logic.on_batch([Decoded("b", [ClockTick(event_id="y", ts=T0)])])
    logic.on_batch([Decoded("b", [])])
    assert LATE_EVENTS.labels("b")._value.get() == before + 1
    late = [r for r in caplog.records if r.getMessage() == "late_events"]
    assert [(r.levelname, r.name, r.by_partition, r.total) for r in late] == [
        ("WARNING", "stockflow.dataflows.logic", {"b": 1}, 1)]


def test_a_partition_that_keeps_delivering_is_never_passed_over():
    """Always the slowest, never silent: each delivery starts its wait afresh."""
    a = Aligner(["slow", "fast"], idle_wait_ms=1000)
    a.add("fast", [ev(i, i, "f") for i in range(100)], now_ms=0)
    for t in range(0, 3000, 100):
        a.add("slow", [ev(t, t / 100, "s")], now_ms=t)
        a.release(t)
        assert not a.idle and a.late == 0


def test_a_tick_waiting_for_its_turn_asks_for_no_ticks_an_event_does():
    """Ticks of one round tie; the last-ranked one waits for the others to move on. Asking for
    ticks on its behalf would make every partition wait on the next tick, without end; an
    event held behind it is worth one at once."""
    a = Aligner(["m", "o"], idle_wait_ms=5000)
    a.resumed(now_ms=0)
    tick = ClockTick(event_id="t", ts=T0 + timedelta(seconds=5))
    a.add("m", [ClockTick(event_id="tm", ts=T0 + timedelta(seconds=5))], now_ms=0)
    a.add("o", [tick], now_ms=0)
    assert [e.event_id for e in a.release(0)] == ["tm"]  # "t" waits: m may say more at 5 s
    assert a.waiting_since == {"m": 0}
    a.last_round = 0
    assert a.due_ticks(500, quiet_ms=1000, waited_ms=25) == []  # no round yet, no hurry
    a.add("o", [ev(1, 6, "o")], now_ms=600)
    a.release(600)
    assert a.due_ticks(700, quiet_ms=1000, waited_ms=25) == ["m"]  # an event waits behind it


def test_every_partition_a_held_event_needs_is_ticked_at_once():
    """m holds an event the merge has not reached, but it has shown nothing past o's event:
    it gets its tick together with s, which holds the merge up now, not one round trip
    later."""
    a = Aligner(["m", "s", "o"], idle_wait_ms=5000)
    a.resumed(now_ms=0)
    a.add("m", [ev(1, 2, "m")], now_ms=0)
    a.add("s", [ev(1, 1, "s")], now_ms=0)
    a.add("o", [ev(1, 3, "o")], now_ms=0)
    assert [e.event_id for e in a.release(0)] == ["s-1"]
    assert a.waiting_since == {"s": 0}  # the merge waits on s alone now
    a.last_round = 0
    assert a.due_ticks(25, quiet_ms=1000, waited_ms=25) == ["m", "s"]
    a.add("s", [ClockTick(event_id="ts", ts=T0 + timedelta(seconds=4))], now_ms=30)
    assert [e.event_id for e in a.release(30)] == ["m-1"]  # o-1 needs m past 3 s
    a.add("m", [ClockTick(event_id="tm", ts=T0 + timedelta(seconds=4))], now_ms=31)
    assert [e.event_id for e in a.release(31)] == ["o-1"]  # the ticks wait for o to pass 4 s
