"""`stockflow bench`: every benchmark on one generated workload, side by side in one run.

The machine is shared and noisy, so each comparison is a ratio of two figures measured in
this same run (stockflow / passthrough, stockflow / each alternative, 2 processes / 1).
Results go to `<out>/results.json` and `<out>/bench.png`; the table is printed.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from stockflow.state.config import EngineConfig

from ..generate import Scenario, write_jsonl
from ..progress import progress
from ..replay import replay
from . import kafka_runs
from .broker import start_tansu
from .naive_redis import run_naive_redis
from .reservations import run_reservations
from .rowlock import run_rowlock
from .staleness import staleness
from .workload import load_workload

LOAD_LEVELS = (0.25, 0.50, 0.90)
STALENESS_LOAD = 0.5  # checkout hold -> published availability, measured at this load too
CLIENTS = (1, 4, 16, 64)


def run_bench(out_dir: str, events: int, redis_url: str, postgres_dsn: str,
              baseline_lines: int, state_entries: int, quick: bool = False,
              show_progress: bool = True) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trace = out / "trace.jsonl"
    scenario = Scenario(events=events, seed=7)
    with open(trace, "wb") as f, progress("generating", events, "events", show_progress) as adv:
        write_jsonl(scenario, f, adv)
    lines = [line for line in trace.read_bytes().splitlines() if line.strip()]
    results: dict = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workload": {"events": len(lines), "order_lines": kafka_runs.order_lines(lines), "seed": 7},
    }
    steps = [
        ("replay", lambda: _replay(trace, out)),
        ("live", lambda: _live(lines, redis_url, quick)),
        ("alternatives", lambda: _alternatives(trace, redis_url, postgres_dsn, baseline_lines,
                                               quick)),
        ("reservations", lambda: [run_reservations(redis_url, c, 20_000 if quick else 100_000)
                                  for c in (1, 16, 64)]),
        ("state", lambda: _state_cost(state_entries)),
    ]
    with progress("benchmarks", len(steps), "steps", show_progress) as advance:
        for name, step in steps:
            results[name] = step()
            advance(1)
    results["ratios"] = ratios(results)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def _replay(trace: Path, out: Path) -> dict:
    seconds = replay(str(trace), str(out / "replay"), EngineConfig(), show_progress=False)
    n = sum(1 for line in trace.read_bytes().splitlines() if line.strip())
    return {"system": "stockflow-replay", "events": n, "seconds": round(seconds, 2),
            "events_per_s": round(n / seconds)}


def _live(lines: list[bytes], redis_url: str, quick: bool) -> dict:
    tansu = start_tansu()
    try:
        bare = kafka_runs.passthrough(tansu.brokers, lines)
        one = kafka_runs.throughput(tansu.brokers, redis_url, lines, processes=1)
        two = kafka_runs.throughput(tansu.brokers, redis_url, lines, processes=2)
        setup, orders = kafka_runs.split_setup(lines)
        paced = orders[: 8_000 if quick else 30_000]  # the same events at every load level
        # A share of the maximum in order lines, the unit it is measured in: the paced events
        # (orders and what follows them) carry more lines per event than the whole trace,
        # so the same share in events would load the engine more than it says.
        lines_per_event = kafka_runs.order_lines(paced) / len(paced)
        loads = []
        for share in LOAD_LEVELS:
            rate = share * one["order_lines_per_s"] / lines_per_event
            result = kafka_runs.latency_under_load(tansu.brokers, redis_url, setup, paced, rate)
            loads.append({"load": share, **result})
        half = STALENESS_LOAD * one["order_lines_per_s"] / lines_per_event
        stale = {"load": STALENESS_LOAD,
                 **staleness(tansu.brokers, redis_url, setup, paced, half)}
        return {"passthrough": bare, "one_process": one, "two_processes": two,
                "latency_under_load": loads, "staleness": stale}
    finally:
        tansu.stop()


def _state_cost(entries: int) -> dict:
    """In a fresh process, so that memory freed by the other benchmarks does not hide the
    state's own."""
    code = ("import json; from stockflow.ops.bench.state_cost import run_state_cost; "
            f"print(json.dumps(run_state_cost({entries})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def _alternatives(trace: Path, redis_url: str, dsn: str, limit: int, quick: bool) -> dict:
    workload = load_workload(str(trace))
    clients = (1, 16) if quick else CLIENTS
    rowlock = [run_rowlock(workload, c, dsn, limit) for c in clients]
    naive = [run_naive_redis(workload, c, redis_url, limit) for c in clients]
    return {"postgres_rowlock": rowlock, "naive_redis": naive}


def ratios(r: dict) -> dict:
    one = r["live"]["one_process"]["order_lines_per_s"]
    best_pg = max(x["lines_per_s"] for x in r["alternatives"]["postgres_rowlock"])
    best_redis = max(x["lines_per_s"] for x in r["alternatives"]["naive_redis"])
    return {
        "stockflow_vs_passthrough": round(one / r["live"]["passthrough"]["order_lines_per_s"], 3),
        "two_vs_one_process": round(r["live"]["two_processes"]["order_lines_per_s"] / one, 3),
        "two_vs_one_process_cpu_per_line": round(
            r["live"]["two_processes"].get("cpu_us_per_line", 0)
            / max(r["live"]["one_process"].get("cpu_us_per_line", 0), 1e-9), 3),
        "stockflow_vs_postgres_rowlock": round(one / best_pg, 2),
        "stockflow_vs_naive_redis": round(one / best_redis, 2),
        "replay_vs_live": round(r["replay"]["events_per_s"] / r["live"]["one_process"]["events_per_s"], 2),
    }
