"""Smoke runs of each benchmark on a small workload: they run, measure something real, and
their report renders. (The figures themselves come from `stockflow bench`, not from tests.)"""

from __future__ import annotations

import io
import json

import msgspec
import pytest

from stockflow.ops.bench import kafka_runs
from stockflow.ops.bench.report import markdown, plot, print_floor, rows, staleness_rows
from stockflow.ops.bench.reservations import run_reservations
from stockflow.ops.bench.run import ratios
from stockflow.ops.bench.scale import HOT_SKU, hot_sku_trace, plan, stage_costs
from stockflow.ops.bench.staleness import staleness
from stockflow.ops.bench.state_cost import run_state_cost
from stockflow.ops.generate import Scenario, write_jsonl


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    buf = io.BytesIO()
    write_jsonl(Scenario(events=8_000, seed=5, skus=120, stores=4), buf)
    return [line for line in buf.getvalue().splitlines() if line.strip()]


def test_staleness_times_checkout_holds_to_published_availability(kafka_brokers, redis_url,
                                                                  lines):
    setup, orders = kafka_runs.split_setup(lines, orders=20)
    r = staleness(kafka_brokers, redis_url, setup, orders[:800], rate=300, probes=12)
    idle, loaded = r["idle"]["quiet_sku"], r["under_load"]
    assert idle["holds"] == 12 and idle["availability_topic"]["holds"] > 6
    for run in (idle, loaded["quiet_sku"], loaded["busy_sku"]):
        grant = run["grant_to_read_model_ms"]
        assert 0 < grant["p50"] <= grant["p99"] < 5_000, run
    assert "release_to_read_model_ms" in idle  # busy SKUs: orders move their availability too
    assert "release_to_read_model_ms" not in loaded["busy_sku"]
    assert len(staleness_rows({"load": 0.5, **r})) == 3


def test_live_benchmarks_measure_real_runs(kafka_brokers, redis_url, lines, tmp_path):
    bare = kafka_runs.passthrough(kafka_brokers, lines)
    assert bare["outputs"] > 0.99 * len(lines)  # one message per valid event
    one = kafka_runs.throughput(kafka_brokers, redis_url, lines, processes=1)
    assert one["order_lines"] == kafka_runs.order_lines(lines) > 1000
    assert one["outputs"] > one["order_lines"] and one["order_lines_per_s"] > 0
    assert one["decisions_equal_replay"]  # checked against the recorded topics' replay
    assert one["cpu_s"] > 0.3 and one["cpu_us_per_line"] > 0  # the engine process, imports too
    setup, orders = kafka_runs.split_setup(lines, orders=20)
    assert b'"order.created"' in b"".join(orders[:200])
    load = kafka_runs.latency_under_load(kafka_brokers, redis_url, setup, orders[:600], rate=400)
    assert load["outputs_timed"] > 100
    assert 0 < load["p50_ms"] <= load["p99_ms"] <= load["max_ms"]
    assert load["clock_ticks"] > 0  # the engine tails with clock ticks on, as in production
    print_floor({"workload": {"events": len(lines)}, "latency_floor": [load]})
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
    real = kafka_runs.LiveRun.outputs

    def one_dispatch_lost(self, *args, **kwargs):
        got = real(self, *args, **kwargs)
        first = next(i for i, o in enumerate(got) if o[0] == "dispatch")
        return got[:first] + got[first + 1:]

    monkeypatch.setattr(kafka_runs.LiveRun, "outputs", one_dispatch_lost)
    with pytest.raises(kafka_runs.DecisionsDiffer, match="dispatch differs .* 1 missing"):
        kafka_runs.throughput(kafka_brokers, redis_url, lines[:3000], processes=1)


def test_a_hot_sku_takes_its_share_of_lines_into_one_bucket(lines):
    hot = hot_sku_trace(lines, share=0.30)
    decoded = [msgspec.json.decode(line) for line in hot if line.startswith(b"{")]
    on_hot = [ln for m in decoded if m.get("type") == "order.created"
              for ln in m["lines"] if ln["sku"] == HOT_SKU]
    assert 0.25 < len(on_hot) / kafka_runs.order_lines(lines) < 0.35
    moved = {(m["order_id"], ln["line_id"]) for m in decoded if m.get("type") == "order.created"
             for ln in m["lines"] if ln["sku"] == HOT_SKU}
    returned = [m for m in decoded if m.get("type") == "order.returned"]  # no shipments made
    assert returned and all((m["sku"] == HOT_SKU) == ((m["order_id"], m["line_id"]) in moved)
                            for m in returned)
    assert any(m.get("type") == "stock.snapshot" and m["sku"] == HOT_SKU for m in decoded)
    untouched = [line for line in lines
                 if b'"order.created"' not in line and b'"order.returned"' not in line]
    assert set(untouched) <= set(hot)  # everything else byte for byte
    uniform, skewed = stage_costs(lines), stage_costs(hot)
    assert skewed["busiest_bucket_line_share"] >= 0.30 > uniform["busiest_bucket_line_share"]
    assert uniform["sequencer_events_per_s"] > 0 and skewed["ledger_us_per_line"] > 0


def test_the_plan_scales_measured_costs_to_the_peak():
    run = {"cpu_us_per_line": 100.0, "order_lines_per_s": 1, "redis_commands_per_line": 2.0,
           "redis_cpu_us_per_line": 10.0}
    measured = {
        "workload": {"lines_per_order": 1.5, "events_per_line": 2.0, "bytes_per_event": 500},
        "stages": {"uniform": {"sequencer_events_per_s": 200_000},
                   "hot_sku": {"busiest_bucket_share": 0.5}},
        "live": {"one_process": run, "two_processes": run, "two_processes_hot_sku": run},
    }
    p = plan(measured, peak_orders_per_s=100_000)
    assert p["peak_lines_per_s"] == 150_000 and p["peak_events_per_s"] == 300_000
    assert p["engine_processes"] == 15  # 150k lines/s x 100 µs = 15 cores
    assert p["redis_cores"] == 2 and p["redis_commands_per_s"] == 300_000  # 1.5 cores, up
    assert p["kafka_input_mb_per_s"] == 150.0
    assert p["sequencers_needed"] == 2  # 300k events/s over 200k/s
    assert p["hot_bucket_ceiling_lines_per_s"] == 20_000  # half of 100 µs per line on one core
