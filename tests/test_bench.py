"""Smoke runs of each benchmark on a small workload: they run, measure something real, and
their report renders. (The figures themselves come from `stockflow bench`, not from tests.)"""

from __future__ import annotations

import io
import json

import pytest

from stockflow.ops.bench import live
from stockflow.ops.bench.report import markdown, plot, rows
from stockflow.ops.bench.reservations import run_reservations
from stockflow.ops.bench.run import ratios
from stockflow.ops.bench.state_cost import run_state_cost
from stockflow.ops.generate import Scenario, write_jsonl


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    buf = io.BytesIO()
    write_jsonl(Scenario(events=8_000, seed=5, skus=120, stores=4), buf)
    return [line for line in buf.getvalue().splitlines() if line.strip()]


def test_live_benchmarks_measure_real_runs(kafka_brokers, redis_url, lines, tmp_path):
    bare = live.passthrough(kafka_brokers, lines)
    assert bare["outputs"] > 0.99 * len(lines)  # one message per valid event
    one = live.throughput(kafka_brokers, redis_url, lines, processes=1)
    assert one["order_lines"] == live.order_lines(lines) > 1000
    assert one["outputs"] > one["order_lines"] and one["order_lines_per_s"] > 0
    assert one["decisions_equal_replay"]  # checked against the recorded topics' replay
    assert one["cpu_s"] > 0.3 and one["cpu_us_per_line"] > 0  # the engine process, imports too
    setup, orders = live.split_setup(lines, orders=20)
    assert b'"order.created"' in b"".join(orders[:200])
    load = live.latency_under_load(kafka_brokers, redis_url, setup, orders[:600], rate=400)
    assert load["outputs_timed"] > 100
    assert 0 < load["p50_ms"] <= load["p99_ms"] <= load["max_ms"]
    results = {
        "workload": {"events": len(lines), "order_lines": one["order_lines"]},
        "replay": {"events_per_s": 1},
        "live": {"passthrough": bare, "one_process": one, "two_processes": one,
                 "latency_under_load": [{"load": 0.5, **load}]},
        "alternatives": {
            "postgres_rowlock": [{"clients": 4, "lines_per_s": 100.0, "p50_ms": 1, "p99_ms": 2}],
            "naive_redis": [{"clients": 1, "lines_per_s": 200.0, "p50_ms": 1, "p99_ms": 2}],
        },
        "reservations": [run_reservations(redis_url, clients=4, requests=2_000)],
        "state": run_state_cost(entries=20_000),
    }
    results["ratios"] = ratios(results)
    assert results["ratios"]["two_vs_one_process"] == 1.0
    assert results["reservations"][0]["granted"] == 2_000
    table = markdown(results)
    assert table.count("\n") == len(rows(results)) + 1
    plot(results, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
    json.dumps(results)  # the results file is plain JSON


def test_state_cost_counts_every_entry():
    cost = run_state_cost(entries=10_000, nodes=4)
    assert cost["entries"] == 10_000
    assert 0 < cost["snapshot_bytes_per_entry"] < 100


def test_throughput_is_not_reported_when_live_decides_unlike_replay(kafka_brokers, redis_url,
                                                                   lines, monkeypatch):
    """The check that guards every throughput figure fails when one command goes missing."""
    real = live.LiveRun.outputs

    def one_dispatch_lost(self, *args, **kwargs):
        got = real(self, *args, **kwargs)
        first = next(i for i, o in enumerate(got) if o[0] == "dispatch")
        return got[:first] + got[first + 1:]

    monkeypatch.setattr(live.LiveRun, "outputs", one_dispatch_lost)
    with pytest.raises(live.DecisionsDiffer, match="dispatch differs .* 1 missing"):
        live.throughput(kafka_brokers, redis_url, lines[:3000], processes=1)
