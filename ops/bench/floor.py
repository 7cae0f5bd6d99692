"""`stockflow bench --latency-floor`: event -> command latency at low rates.

At a few hundred events a second the CPU is not what limits: what is left of the latency is
waiting (the producer's linger, the broker's fetch, the source's poll, the merge's clock-tick
round trips, Bytewax passing batches on). Same engine settings, producer and measure as the
latency-under-load runs of `stockflow bench` (`kafka_runs.latency_under_load`).
"""

from __future__ import annotations

import json
from pathlib import Path

from . import kafka_runs
from .broker import start_tansu

# (events/s, events paced at that rate): about ten seconds each.
FLOOR_RATES = ((300, 3_000), (1_000, 10_000))


def run_latency_floor(out_dir: str, events: int, redis_url: str,
                      rates=FLOOR_RATES) -> dict:
    """The generated workload (seed 7) set up at once, then its orders paced at each rate;
    results also go to `<out>/latency-floor.json`."""
    lines = kafka_runs.generated(events)
    setup, orders = kafka_runs.split_setup(lines)
    tansu = start_tansu()
    try:
        runs = [kafka_runs.latency_under_load(tansu.brokers, redis_url, setup, orders[:n], rate)
                for rate, n in rates]
    finally:
        tansu.stop()
    results = {"workload": {"events": len(lines), "setup_events": len(setup), "seed": 7},
               "latency_floor": runs}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latency-floor.json").write_text(json.dumps(results, indent=2))
    return results
