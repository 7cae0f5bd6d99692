"""Redis stopped while the engine runs, then back empty (no persistence): the engine goes
on, finds out, loads the functions again and rewrites its whole read model; reservations
work again without anyone's hand."""

from __future__ import annotations

import signal
import time

import redis

from stockflow.connectors.reservations import Reservations
from stockflow.ops.bench.kafka_runs import topic_of

from ..live_runs import LAYOUT, LiveRun, generated_trace
from ..servers import RedisServer, unique_prefix
from .figures import FIGURES


def test_redis_back_empty_is_rebuilt_without_a_hand(kafka_brokers, tmp_path, full):
    down_s = 20 if full else 3
    server = RedisServer()
    trace = generated_trace(tmp_path, events=6_000, seed=21, skus=150, stores=6)
    lines = [line for line in trace.read_bytes().splitlines() if line.strip()]
    run = LiveRun(kafka_brokers, server.url, unique_prefix(), tmp_path)
    run.env["STOCKFLOW_RUN_CLOCK_TICK_S"] = "1"  # tailing as in production
    run.create_topics(LAYOUT)
    client = redis.Redis.from_url(server.url, socket_timeout=2)
    prefix = run.prefix.rstrip(".")
    half = len(lines) // 2
    proc = run.start()
    try:
        run.produce(lines[:half], topic_of, stamp_now=True)
        _until(lambda: client.exists(f"{prefix}:heartbeat"), "a first heartbeat", proc, run)
        server.stop()
        run.produce(lines[half:], topic_of, stamp_now=True)  # decided while Redis is away
        time.sleep(down_s)
        server.start()  # empty: no functions, no read model, no heartbeat
        back = time.monotonic()
        _until(lambda: client.function_list(), "the functions loaded again", proc, run)
        _until(lambda: _fresh(client, prefix), "a fresh heartbeat", proc, run)
        rebuilt_s = time.monotonic() - back
        time.sleep(2)  # the tail of the input applied and published
        expected = _last_availability(run)
        got = {(sku, ch): int(client.hget(f"{prefix}:{{{sku}}}:avail", ch) or 0)
               for sku, ch in expected}
        whole = sum(got[k] == v for k, v in expected.items())
        sku, channel = max(expected, key=expected.get)
        hold = Reservations(client, prefix).reserve(sku, channel, 1, 60_000, "after-outage")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        server.stop()
    FIGURES.add("Redis stopped, back empty", outage_s=down_s,
                functions_and_read_model_back_s=round(rebuilt_s, 1),
                read_model_whole=f"{whole}/{len(expected)} (sku, channel)",
                reservation_after="granted" if hold.hold_id == "after-outage" else "refused")
    assert whole == len(expected) > 100
    said = [line.split(" event=")[1].split(" ")[0] for line in run.log().splitlines()
            if "logger=stockflow.connectors.redis_store " in line]
    assert said == ["redis_away", "redis_back", "redis_found_empty",
                    "redis_read_model_rewritten"], said  # one line each, in that order


def _until(check, what: str, proc, run, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, run.log()[-3000:]
        try:
            if check():
                return
        except redis.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no {what} after {timeout} s:\n{run.log()[-3000:]}")


def _fresh(client, prefix: str) -> bool:
    beat = client.get(f"{prefix}:heartbeat")
    return beat is not None and int(beat) > time.time() * 1000


def _last_availability(run: LiveRun) -> dict:
    last = {}
    for o in run.decoded():
        if type(o).__name__ == "AvailabilityChanged":
            last[(o.sku, o.channel)] = o.available
    return last
