"""Live mode decides as a replay of what Kafka recorded, merged by event time, with the topic
layout platform teams produce: master data on its own topic, stock keyed by SKU and orders
keyed by order id over several partitions, arriving interleaved and late.

Each test reads the input topics back afterwards, merges them as the engine does
(`connectors/recorded_input.py`) and replays that with `stockflow replay`: the reference is what was recorded,
ticks included, never the file the test started from.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from confluent_kafka import Producer

from stockflow.connectors.kafka_admin import input_topics
from stockflow.ops.bench.kafka_runs import topic_of
from stockflow.state.events import (
    Channel,
    ChannelUpserted,
    ClockTick,
    Node,
    NodeUpserted,
    OrderCreated,
    OrderLine,
    ShipTo,
    StockSnapshot,
)
from stockflow.state.outputs import DeadLetter, OrderStatus

from .invariants import audit
from .live_runs import LAYOUT, LiveRun, commands_and_statuses, replay_of_recorded
from .servers import unique_prefix
from .test_dataflow import decisions, final_availability, read_events
from .test_live import lines_of, nonzero, trace, without_dead  # noqa: F401 (fixture)

_ENCODE = msgspec.json.Encoder().encode


def assert_same_decisions(live: list, replayed: list) -> None:
    assert decisions(without_dead(live)) == decisions(without_dead(replayed))
    assert nonzero(final_availability(live)) == nonzero(final_availability(replayed))
    assert sum(type(o) is DeadLetter for o in live) == \
        sum(type(o) is DeadLetter for o in replayed)


def filled(outputs: list) -> int:
    """Order lines whose last status is allocated or held."""
    last = {}
    for o in outputs:
        if type(o) is OrderStatus:
            last[(o.order_id, o.line_id)] = o.status
    return sum(s in ("allocated", "held") for s in last.values())


@pytest.mark.parametrize("processes", ["1", "2"])
def test_producers_layout_decides_as_the_merged_replay(kafka_brokers, redis_url, trace,
                                                       tmp_path, processes):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics(LAYOUT)
    run.produce(lines_of(trace), topic_of)  # interleaved across 7 partitions, as sent
    run.drain("--processes", processes)
    live = run.decoded()
    replayed, merged = replay_of_recorded(run)
    assert_same_decisions(live, replayed)
    assert filled(live) == filled(replayed) > 1000
    events, _ = read_events(tmp_path / "recorded.jsonl")
    audit(events, without_dead(live))  # the promise after every event, in the merged order


def _sentinel_ticks(run: LiveRun, ts: datetime) -> None:
    """A tick at `ts` into every input partition, as a producer marks the end of a burst."""
    producer = Producer({"bootstrap.servers": run.brokers})
    for topic in input_topics(run.prefix):
        name = topic.removeprefix(run.prefix)
        for p in range(LAYOUT[name]):
            tick = ClockTick(event_id=f"end/{name}/{p}", ts=ts)
            producer.produce(topic, _ENCODE(tick), partition=p)
    assert producer.flush(30) == 0


def _wait_for_statuses(run: LiveRun, expected: int, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = len(run.outputs(topics=[run.prefix + "order-status"]))
        if got >= expected:
            return
        assert proc.poll() is None, run.log()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"{got} of {expected} order statuses after {timeout} s")


def test_a_topic_held_back_is_waited_for(kafka_brokers, redis_url, trace, tmp_path):
    """Master data produced seconds after the orders and stock that need it: the engine
    waits for it instead of rejecting every order as `unknown_channel`."""
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.env["STOCKFLOW_RUN_IDLE_WAIT_S"] = "60"
    run.create_topics(LAYOUT)
    lines = lines_of(trace)
    master = [line for line in lines if topic_of(line)[0] == "master"]
    rest = [line for line in lines if topic_of(line)[0] != "master"]
    run.produce(rest, topic_of)
    proc = run.start()  # tails
    try:
        time.sleep(2)
        assert run.outputs(topics=[run.prefix + "order-status"]) == []  # waiting for master
        run.produce(master, topic_of)
        last = max(e.ts for e in read_events(trace)[0])
        _sentinel_ticks(run, last + timedelta(seconds=1))
        replayed, _ = replay_of_recorded(run)
        _wait_for_statuses(run, sum(type(o) is OrderStatus for o in replayed), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    live = run.decoded()
    assert_same_decisions(live, replayed)
    assert not any(getattr(o, "reason", None) == "unknown_channel" for o in live)


def _now_world(now: datetime, ttl_s: float) -> tuple[list, list]:
    """Master data and stock, then unpaid orders, all stamped with wall time."""
    setup = [
        NodeUpserted(event_id="n1", ts=now, node=Node(
            id="DC-1", kind="dc", region="east", lat=31.2, lon=121.5, can_ship=True,
            can_pickup=False)),
        ChannelUpserted(event_id="c1", ts=now, channel=Channel(
            id="web", nodes=["*"], hold_ttl_s=ttl_s, allow_split=False, backorder=False)),
        StockSnapshot(event_id="s1", ts=now, sku="K1", node="DC-1", on_hand=10, seq=1),
    ]
    orders = [OrderCreated(event_id=f"o{i}", ts=now, order_id=f"O{i}", channel="web",
                           lines=[OrderLine(line_id="1", sku="K1", qty=1)],
                           ship_to=ShipTo(region="east", lat=31.0, lon=121.0),
                           fulfillment="ship", paid=False) for i in range(3)]
    return setup, orders


def test_holds_expire_on_time_with_no_traffic_and_a_restart_repeats_the_same_commands(
        kafka_brokers, redis_url, tmp_path):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.env["STOCKFLOW_RUN_CLOCK_TICK_S"] = "1"  # the engine writes ticks into quiet partitions
    run.create_topics(LAYOUT)
    ttl_s = 2.0
    now = datetime.now(timezone.utc)
    setup, orders = _now_world(now, ttl_s)
    run.produce([_ENCODE(e) for e in setup + orders], topic_of)
    proc = run.start()
    deadline_ms = (now + timedelta(seconds=ttl_s)).timestamp() * 1000
    expired: list = []
    give_up = time.monotonic() + 30
    while len(expired) < 3 and time.monotonic() < give_up:  # no event is sent after the orders
        time.sleep(0.2)
        expired = [(msgspec.json.decode(v), ts) for _, v, ts in
                   run.outputs(True, [run.prefix + "order-status"])
                   if b'"expired"' in v]
    assert len(expired) == 3, run.log()[-3000:]
    delays = [ts - deadline_ms for _, ts in expired]
    print(f"holds expired {sorted(round(d) for d in delays)} ms after their deadline, by "
          f"{sorted({o['cause'] for o, _ in expired})} (deadline {deadline_ms:.0f})")
    assert all(0 <= d <= 2000 for d in delays), delays  # within 2 s of the deadline
    proc.send_signal(signal.SIGKILL)  # no goodbye: resumes from the last snapshot
    proc.wait()
    proc = run.start()  # ticks again, from where the snapshot was
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, run.log()[-3000:]
    run.drain()  # whatever the last ticks left waiting
    live = run.decoded()
    replayed, _ = replay_of_recorded(run)
    # At least once, and the same commands every time: deduplicated by content (command ids
    # and causes included), live is exactly the replay of what Kafka recorded.
    unique = commands_and_statuses(live)
    assert unique == commands_and_statuses(replayed)
    assert sum(b'"expired"' in o for o in unique) == 3


def test_a_new_recovery_store_refuses_output_topics_that_hold_commands(
        kafka_brokers, redis_url, trace, tmp_path):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics(LAYOUT)
    run.produce(lines_of(trace)[:2000], topic_of)
    run.drain()
    run.env["STOCKFLOW_RECOVERY_DIR"] = str(tmp_path / "lost")
    proc = run.start("--drain")
    assert proc.wait(timeout=60) == 1
    line = run.log().strip().splitlines()[-1]
    assert line.startswith("stockflow: error: refusing to start: the recovery store") \
        and "--from-scratch" in line, line
    run.drain("--from-scratch")  # said on purpose: every input again, same command ids


def test_stored_offsets_past_the_brokers_end_are_refused(redis_url, trace, tmp_path):
    """A broker that lost its data (no volume) must not be resumed at stale offsets."""
    from .servers import start_tansu

    first = start_tansu()
    prefix = unique_prefix()
    try:
        run = LiveRun(first.brokers, redis_url, prefix, tmp_path)
        run.create_topics(LAYOUT)
        run.produce(lines_of(trace)[:2000], topic_of)
        run.drain()
    finally:
        first.stop()
    second = start_tansu()  # empty: the same topics again, nothing in them
    try:
        run = LiveRun(second.brokers, redis_url, prefix, tmp_path)
        run.create_topics(LAYOUT)
        proc = run.start("--drain")
        assert proc.wait(timeout=60) == 1
        line = run.log().strip().splitlines()[-1]
        assert "the broker lost data" in line and "up to offset" in line, line
    finally:
        second.stop()
