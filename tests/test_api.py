"""The read-only HTTP API, asked with a real HTTP client: served by `stockflow run` next to
/metrics (a real tansu broker and Redis), and by `stockflow api` alone from Redis."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest
import redis
from confluent_kafka import Producer

from stockflow.connectors.read_model_reader import ReadModelReader
from stockflow.ops.config import KafkaSettings
from stockflow.ops.health import EngineHealth
from stockflow.ops.live import SOURCE_STEP

from . import read_side_trace as trace
from .live_runs import LiveRun
from .servers import free_port, unique_prefix

SKU = trace.SKU


def produce_one_by_one(run: LiveRun, lines: list[bytes]) -> None:
    """Each message in a record batch of its own: tansu answers a partition's end offset as
    its last batch's first offset + 1, which is exact only for batches of one."""
    producer = Producer({"bootstrap.servers": run.brokers})
    for line in lines:
        producer.produce(run.prefix + "orders", line, partition=0)
        assert producer.flush(10) == 0


def get(port: int, path: str, method: str = "GET",
        host: str = "127.0.0.1") -> tuple[int, dict | str]:
    request = urllib.request.Request(f"http://{host}:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            status, kind, body = r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as exc:
        status, kind, body = exc.code, exc.headers["Content-Type"], exc.read()
    return status, json.loads(body) if kind == "application/json" else body.decode()


def until(check, timeout: float = 60, what: str = ""):
    """Poll `check()` until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except (OSError, AssertionError):  # not listening yet, or not there yet
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def engine(kafka_brokers, redis_url, tmp_path_factory):
    """`stockflow run` tailing the trace's topics, its API on a free port."""
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path_factory.mktemp("api"))
    run.env["STOCKFLOW_RUN_METRICS_PORT"] = str(port := free_port())
    run.env["STOCKFLOW_RUN_IDLE_WAIT_S"] = "0.5"  # the trace is on one partition of three
    run.env["STOCKFLOW_REDIS_HEARTBEAT_STALE_S"] = "2"
    run.create_topics({})
    produce_one_by_one(run, trace.lines())
    proc = run.start()
    try:
        try:
            until(lambda: get(port, f"/v1/skus/{SKU}/positions/DC-GZ")[1] ==
                  trace.POSITIONS["DC-GZ"], what=f"the engine's position of {SKU}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last answer {get(port, f'/v1/skus/{SKU}/positions')}, "
                                 f"health {get(port, '/v1/health')}; the engine said:\n"
                                 f"{run.log()[-3000:]}") from None
        yield run, port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_availability_of_every_channel_and_of_one(engine):
    _, port = engine
    assert get(port, f"/v1/skus/{SKU}/availability") == (
        200, {"sku": SKU, "channels": trace.CHANNELS, "checkout_pending": 0})
    assert get(port, f"/v1/skus/{SKU}/availability/web") == (
        200, {"sku": SKU, "channel": "web", "available": 13, "max_line_qty": 10})


def test_positions_of_every_node_and_of_one(engine):
    _, port = engine
    assert get(port, f"/v1/skus/{SKU}/positions") == (
        200, {"sku": SKU, "positions": [trace.POSITIONS["DC-GZ"], trace.POSITIONS["DC-SH"]]})
    assert get(port, f"/v1/skus/{SKU}/positions/DC-SH") == (200, trace.POSITIONS["DC-SH"])


def test_unknown_skus_channels_nodes_and_routes_are_json_404s(engine):
    _, port = engine
    assert get(port, "/v1/skus/NOPE/availability") == (
        404, {"error": "unknown SKU 'NOPE': the engine has published nothing for it"})
    assert get(port, f"/v1/skus/{SKU}/availability/jd") == (
        404, {"error": f"no channel 'jd' in the read model of SKU '{SKU}'"})
    assert get(port, f"/v1/skus/{SKU}/positions/DC-X") == (
        404, {"error": f"no node 'DC-X' in the read model of SKU '{SKU}'"})
    status, body = get(port, "/v1/nothing")
    assert status == 404 and body["error"].startswith("no route /v1/nothing; routes: /v1/health")
    assert get(port, f"/v1/skus/{SKU}/availability", method="POST") == (
        405, {"error": "read-only API: GET only"})


def test_health_says_heartbeat_lag_per_input_partition_and_last_snapshot(engine):
    run, port = engine
    status, body = until(lambda: (r := get(port, "/v1/health"))[1]["input_lag"] and
                         not any(r[1]["input_lag"].values()) and r, what="no lag")
    assert status == 200
    assert body["heartbeat"]["fresh"] is True
    assert 0 <= body["heartbeat"]["age_s"] <= body["heartbeat"]["stale_after_s"] == 2
    assert sorted(body["input_lag"]) == [f"{run.prefix}{t}:0" for t in ("master", "orders",
                                                                          "stock")]
    at = datetime.fromisoformat(body["last_snapshot"]["at"])
    assert abs((datetime.now(timezone.utc) - at).total_seconds()) < 30  # snapshots every 0.2 s
    assert body["last_snapshot"]["epoch"] > 0


def test_by_default_the_engine_listens_on_every_interface(engine):
    _, port = engine
    assert get(port, "/v1/health", host="127.0.0.2")[0] == 200  # not only 127.0.0.1


def test_an_operator_can_keep_metrics_and_the_api_on_loopback(kafka_brokers, redis_url,
                                                               tmp_path):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.env["STOCKFLOW_RUN_METRICS_PORT"] = str(port := free_port())
    run.env["STOCKFLOW_RUN_METRICS_HOST"] = "127.0.0.1"
    run.create_topics({})
    proc = run.start()
    try:
        assert until(lambda: get(port, "/metrics")[0] == 200, what="/metrics on 127.0.0.1")
        assert get(port, "/v1/health")[0] in (200, 503)  # answered, fresh or not
        with pytest.raises(ConnectionRefusedError):  # another address of this host: nobody
            socket.create_connection(("127.0.0.2", port), timeout=5).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_metrics_are_still_served_with_bytewax_step_timings(engine):
    _, port = engine
    status, text = get(port, "/metrics")
    assert status == 200
    assert 'stockflow_events_total{type="order.created"} 2.0' in text
    assert "bytewax_" in text  # Bytewax's own, passed through


def test_stockflow_api_serves_the_same_from_redis_alone(engine, redis_url):
    run, _ = engine
    port = free_port()
    env = {**run.env, "STOCKFLOW_KAFKA_BROKERS": "127.0.0.1:1"}  # it never asks the broker
    proc = subprocess.Popen([sys.executable, "-m", "stockflow.ops.cli", "api", "--port",
                             str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert until(lambda: get(port, f"/v1/skus/{SKU}/positions/DC-SH"), what="api") == (
            200, trace.POSITIONS["DC-SH"])
        assert get(port, f"/v1/skus/{SKU}/availability")[1]["channels"] == trace.CHANNELS
        status, body = get(port, "/v1/health")
        assert status == 200 and list(body) == ["heartbeat"] and body["heartbeat"]["fresh"]
        assert get(port, "/metrics")[0] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert proc.stderr.read().splitlines() == [
        f"stockflow api: serving http://127.0.0.1:{port}/v1/ from {redis_url}"]


def test_health_is_503_once_the_heartbeat_is_stale(redis_url):
    prefix = unique_prefix().rstrip(".")
    client = redis.Redis.from_url(redis_url)
    reader = ReadModelReader(client, prefix, stale_after_s=2)
    assert EngineHealth(reader).report() == (False, {"heartbeat": {
        "age_s": None, "stale_after_s": 2.0, "fresh": False}})
    client.set(f"{prefix}:heartbeat", int(time.time() * 1000) + 2000 - 5000)  # written 5 s ago
    fresh, body = EngineHealth(reader).report()
    assert not fresh and 5 <= body["heartbeat"]["age_s"] < 6


def test_lag_is_what_the_broker_holds_beyond_the_recovery_store(kafka_brokers, redis_url,
                                                                 tmp_path):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics({})
    produce_one_by_one(run, trace.lines())
    run.drain()
    produce_one_by_one(run, trace.lines()[:3])  # written after the engine stopped: not read
    reader = ReadModelReader(redis.Redis.from_url(redis_url), run.prefix.rstrip("."))
    health = EngineHealth(reader, KafkaSettings(brokers=kafka_brokers,
                                                topic_prefix=run.prefix),
                          str(tmp_path / "recovery"), SOURCE_STEP)
    _, body = health.report()
    assert body["input_lag"] == {f"{run.prefix}master:0": 0, f"{run.prefix}orders:0": 3,
                                 f"{run.prefix}stock:0": 0}
    # The epoch a restart says it resumes at is the one health said, the snapshot's next.
    snapshot = body["last_snapshot"]
    assert snapshot["resume_epoch"] == snapshot["epoch"] + 1
    run.drain()
    assert f"event=resume from=snapshot epoch={snapshot['resume_epoch']} " in run.log()


def test_a_bad_port_or_a_taken_one_is_one_line(redis_url):
    cli = [sys.executable, "-m", "stockflow.ops.cli", "api", "--port"]
    done = subprocess.run([*cli, "http"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "stockflow api: argument --port: expected a port, got 'http' (see --help)"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*cli, str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"stockflow: error: cannot listen on 127.0.0.1:{port}: Address already in use"]
