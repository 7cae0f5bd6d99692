"""`stockflow explain ORDER_ID` without `--events`: explained from what a running engine
recorded in Kafka (its input topics over several partitions and its checkout-intake journal),
as the replay of those topics decides, with the same output as from that trace."""

from __future__ import annotations

import json
import os
import signal
import time

import msgspec
import redis
from confluent_kafka import Producer

from stockflow.connectors.kafka_admin import journal_topic
from stockflow.connectors.recorded_input import recorded_input
from stockflow.connectors.reservations import Reservations
from stockflow.ops.bench.kafka_runs import topic_of
from stockflow.ops.cli import main
from stockflow.state.events import CheckoutHold, CheckoutTaken
from stockflow.state.outputs import DispatchAllocate

from .live_runs import DECODE_OUTPUT, LAYOUT, LiveRun
from .scenario import BEIJING, Script
from .servers import unique_prefix

SKU = "SKU-1"


def _recorded(kafka_brokers, redis_url, tmp_path) -> tuple[LiveRun, bytes]:
    """Master data, stock and orders in the producers' layout; a checkout hold of 5 units
    at DC-SH journalled before order O2. Returns the run and the journalled intake."""
    e = Script()
    events = [e.node("DC-SH"), e.node("DC-BJ", region="Beijing", at=BEIJING),
              e.channel("web", allow_split=False), e.snapshot(SKU, "DC-SH", 10),
              e.snapshot(SKU, "DC-BJ", 4), e.order("O1", [(SKU, 2)]),
              e.order("O2", [(SKU, 4)], paid=True), e.order("O3", [("SKU-2", 1)])]
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics(LAYOUT)
    run.produce([msgspec.json.encode(ev) for ev in events], topic_of)
    # Before the 7th message of the merged input (O2's creation): 2q with q = 7.
    taken = CheckoutTaken(event_id="intake-1", ts=events[5].ts, sku=SKU, at=14, n=1,
                          holds=[CheckoutHold(hold_id="h1", channel="web", qty=5,
                                              expires_ms=2**50)])
    producer = Producer({"bootstrap.servers": kafka_brokers})
    producer.produce(journal_topic(run.prefix), msgspec.json.encode(taken))
    assert producer.flush(30) == 0
    return run, msgspec.json.encode(taken)


def _env(monkeypatch, run: LiveRun) -> None:
    for name in [n for n in os.environ if n.startswith("STOCKFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STOCKFLOW_KAFKA_BROKERS", run.brokers)
    monkeypatch.setenv("STOCKFLOW_KAFKA_TOPIC_PREFIX", run.prefix)


def test_explained_from_the_recorded_topics_as_from_their_trace(kafka_brokers, redis_url,
                                                                tmp_path, capsys, monkeypatch):
    run, intake = _recorded(kafka_brokers, redis_url, tmp_path)
    merged, _ = recorded_input(run.brokers, run.prefix)
    assert intake in merged  # the journal is part of the recorded input, in its place
    trace = tmp_path / "recorded.jsonl"
    trace.write_bytes(b"\n".join(merged) + b"\n")
    _env(monkeypatch, run)

    assert main(["explain", "O2"]) == 0
    from_topics = capsys.readouterr().out.splitlines()
    assert main(["explain", "O2", "--events", str(trace), "--buckets", "8"]) == 0
    from_trace = capsys.readouterr().out.splitlines()
    assert from_topics[0].startswith(f"order O2 in the topics {run.prefix}")
    assert from_topics[1:] == from_trace[1:]

    assert main(["explain", "O2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    [step] = doc["lines"][0]["steps"]
    at = {n["node"]: n for n in step["sourcing"]["nodes"]}
    # The checkout's 5 units were taken in before O2 (journalled there): DC-SH had 10 on
    # hand, O1's 2 and the checkout's 5 held, so 3 left, and O2's 4 went to DC-BJ.
    assert (at["DC-SH"]["held"], at["DC-SH"]["atp"]) == (7, 3)
    assert step["sourcing"]["parts"] == [["DC-BJ", 4]]


def test_an_order_the_topics_do_not_carry_is_one_line(kafka_brokers, redis_url, tmp_path,
                                                      capsys, monkeypatch):
    run, _ = _recorded(kafka_brokers, redis_url, tmp_path)
    _env(monkeypatch, run)
    assert main(["explain", "NOPE"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"stockflow: error: order NOPE is not in the topics "
                   f"{run.prefix}{{master,stock,orders,checkout-intake}} at {run.brokers}")


def test_engine_flags_do_not_go_with_the_recorded_topics(capsys):
    assert main(["explain", "O1", "--buckets", "4"]) == 2
    assert "engine flags go with --events" in capsys.readouterr().err


def test_a_live_decision_made_beside_a_checkout_hold_is_explained_as_live_made_it(
        kafka_brokers, redis_url, tmp_path, capsys, monkeypatch):
    """A running engine takes in a checkout's 8 units (journalled by the engine itself), then
    a paid order of 4 comes: the explanation from the topics shows the hold where live took
    it and the node live allocated."""
    e = Script()
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.env["STOCKFLOW_RUN_IDLE_WAIT_S"] = "0.3"  # one event at a time over quiet partitions
    run.create_topics(LAYOUT)
    run.produce([msgspec.json.encode(ev) for ev in (
        e.node("DC-SH"), e.node("DC-BJ", region="Beijing", at=BEIJING),
        e.channel("web", allow_split=False), e.snapshot(SKU, "DC-SH", 10),
        e.snapshot(SKU, "DC-BJ", 4))], topic_of)
    api = Reservations(redis.Redis.from_url(redis_url), run.prefix.rstrip("."))
    proc = run.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if api.available(SKU, "web") == 14:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"nothing published; the engine said:\n{run.log()[-3000:]}")
        api.reserve(SKU, "web", 8, 600_000, "cart-1")
        while b"checkout.taken" not in b"".join(recorded_input(run.brokers, run.prefix)[0]):
            assert time.monotonic() < deadline, "the checkout was never taken in"
            time.sleep(0.2)
        run.produce([msgspec.json.encode(e.order("O2", [(SKU, 4)], paid=True))], topic_of)
        live = []
        while not live:
            assert time.monotonic() < deadline, f"O2 was never decided:\n{run.log()[-3000:]}"
            live = [o for stream, v in run.outputs() if stream == "dispatch"
                    for o in [DECODE_OUTPUT(v)]
                    if type(o) is DispatchAllocate and o.order_id == "O2"]
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    _env(monkeypatch, run)
    assert main(["explain", "O2", "--json"]) == 0
    [step] = json.loads(capsys.readouterr().out)["lines"][0]["steps"]
    nodes = step["sourcing"]["nodes"]
    assert sum(n.get("held", 0) for n in nodes) == 8  # the checkout's hold, taken in before
    assert step["sourcing"]["parts"] == [[o.node, o.qty] for o in live] == [["DC-BJ", 4]]
