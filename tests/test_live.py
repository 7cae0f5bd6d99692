"""Live mode end to end: a real Kafka-protocol broker (tansu) and a real Redis.

Generated events go to the input topics, `stockflow run` consumes them, and the outputs are
read back from the output topics and checked as the replay's are.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import redis
from confluent_kafka.admin import AdminClient

from stockflow.ops.replay import replay
from stockflow.state.config import EngineConfig
from stockflow.state.outputs import DeadLetter

from .invariants import audit
from .live_runs import LiveRun, generated_trace
from .servers import unique_prefix
from .test_dataflow import all_outputs, decisions, final_availability, nonzero, read_events


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return generated_trace(tmp_path_factory.mktemp("live"), events=6_000, seed=11, skus=150,
                           stores=6)


@pytest.fixture(scope="module")
def replayed(trace, tmp_path_factory):
    out = tmp_path_factory.mktemp("replayed")
    replay(str(trace), str(out), EngineConfig())
    return all_outputs(out)


def lines_of(trace) -> list[bytes]:
    return [line for line in trace.read_bytes().splitlines(keepends=True) if line.strip()]


def drained(kafka_brokers, redis_url, trace, tmp_path) -> LiveRun:
    """The trace through one input partition, consumed to its end by `stockflow run`."""
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics({})
    run.produce(lines_of(trace))
    run.drain()
    return run


def test_live_mode_gives_the_replays_decisions(kafka_brokers, redis_url, trace, replayed,
                                               tmp_path):
    run = drained(kafka_brokers, redis_url, trace, tmp_path)
    live = run.decoded()
    events, malformed = read_events(trace)
    audit(events, live)  # the promise after every event, statuses, unique command ids
    assert decisions(without_dead(live)) == decisions(without_dead(replayed))
    assert nonzero(final_availability(live)) == nonzero(final_availability(replayed))
    dead = [o for o in live if type(o) is DeadLetter]
    assert len(dead) == len(malformed) > 0
    assert sorted(d.raw for d in dead) == sorted(d.raw for d in replayed if type(d) is DeadLetter)
    assert all(d.error for d in dead)
    assert all(d.source.startswith(f"{run.prefix}orders:0:") for d in dead)  # topic:part:offset


def without_dead(outputs: list) -> list:
    """Dead letters name their source (file line or topic offset): compared apart."""
    return [o for o in outputs if type(o) is not DeadLetter]


def test_live_mode_publishes_the_read_model_to_redis(kafka_brokers, redis_url, trace, replayed,
                                                     tmp_path):
    run = drained(kafka_brokers, redis_url, trace, tmp_path)
    client = redis.Redis.from_url(redis_url)
    prefix = run.prefix.rstrip(".")
    for (sku, channel), available in final_availability(replayed).items():
        value = client.hget(f"{prefix}:{{{sku}}}:avail", channel)
        assert int(value) == available, (sku, channel)



@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigterm_stops_the_engine_cleanly(kafka_brokers, redis_url, tmp_path, processes):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics({})
    proc = run.start("--processes", processes)
    time.sleep(5)  # formed (a stop while forming aborts) and tailing the empty topics
    assert proc.poll() is None, run.log()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0, run.log()
    stops = [line for line in run.log().splitlines() if " event=stop " in line]
    assert len(stops) == int(processes), run.log()  # one per worker process
    assert all("reason=SIGTERM graceful=true next_start=\"resumes from the last snapshot\""
               in line for line in stops), stops
    assert "panicked" not in run.log() and "Traceback" not in run.log()  # wound down, not torn


def test_missing_topics_or_broker_are_one_readable_line(kafka_brokers, redis_url, tmp_path):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)  # no topics created
    proc = run.start()
    assert proc.wait(timeout=60) == 1
    assert run.log().strip().splitlines()[-1] == (
        f"stockflow: error: topics missing on {kafka_brokers}: {run.prefix}master, "
        f"{run.prefix}stock, {run.prefix}orders, {run.prefix}checkout-intake (create them "
        "with `stockflow topics create`)")
    run.env["STOCKFLOW_KAFKA_BROKERS"] = "127.0.0.1:1"
    proc = run.start()
    assert proc.wait(timeout=60) == 1
    assert run.log().strip().startswith("stockflow: error: cannot reach Kafka at 127.0.0.1:1")
    topics = subprocess.run([sys.executable, "-m", "stockflow.ops.cli", "topics", "create"],
                            env=run.env, capture_output=True, text=True, timeout=60)
    assert topics.returncode == 1
    [line] = topics.stderr.splitlines()  # one line, not librdkafka's retries
    assert line.startswith("stockflow: error: cannot reach Kafka at 127.0.0.1:1")


def test_topics_create_gives_master_data_one_partition(kafka_brokers, redis_url, tmp_path):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    env = {**run.env, "STOCKFLOW_KAFKA_PARTITIONS": "3"}
    done = subprocess.run([sys.executable, "-m", "stockflow.ops.cli", "topics", "create"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    counts = {t: len(m.partitions) for t, m in AdminClient(
        {"bootstrap.servers": kafka_brokers}).list_topics(timeout=10).topics.items()
        if t.startswith(run.prefix)}
    assert counts[f"{run.prefix}master"] == 1  # as the README's layout says: 1 is plenty
    assert counts[f"{run.prefix}orders"] == counts[f"{run.prefix}stock"] == 3
    assert counts[f"{run.prefix}dispatch"] == counts[f"{run.prefix}checkout-intake"] == 3
