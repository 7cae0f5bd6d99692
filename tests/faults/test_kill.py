"""kill -9 at random moments of a live run on the producers' layout, then a drain: nothing
lost, nothing done twice, nothing over-committed."""

from __future__ import annotations

import random
import signal
import time

from stockflow.ops.bench.kafka_runs import topic_of

from ..live_runs import LAYOUT, LiveRun, generated_trace
from ..servers import unique_prefix
from .figures import FIGURES
from .judge import judge


def test_kill_points(kafka_brokers, redis_url, tmp_path, full):
    rounds, kills = (5, 10) if full else (1, 3)
    landed, survived, totals, _ = _stop_points(kafka_brokers, redis_url, tmp_path, rounds, kills,
                                               signal.SIGKILL)
    FIGURES.add("kill -9 (master 1, stock 3, orders 3 partitions)",
                kill_points_survived=f"{survived}/{landed}", **{
                    k: v for k, v in totals.items() if k != "dead_letters"})
    assert landed >= rounds * kills * 2 // 3, f"only {landed} kills landed mid-run"
    assert survived == landed, totals


def test_sigterm_points_wind_down_gracefully(kafka_brokers, redis_url, tmp_path, full):
    """SIGTERM at random moments: each stop winds the flow down (no forced stop, no panic),
    keeps what the merge held for the next start, and the drain after decides as replay."""
    rounds, stops = (2, 6) if full else (1, 3)
    landed, survived, totals, logs = _stop_points(kafka_brokers, redis_url, tmp_path, rounds,
                                                  stops, signal.SIGTERM)
    graceful = sum(log.count(" graceful=true ") for log in logs)
    FIGURES.add("SIGTERM (master 1, stock 3, orders 3 partitions)",
                stop_points_survived=f"{survived}/{landed}", graceful=f"{graceful}/{landed}",
                **{k: v for k, v in totals.items() if k != "dead_letters"})
    assert landed >= rounds * stops * 2 // 3, f"only {landed} stops landed mid-run"
    assert survived == landed, totals
    assert graceful == landed and not any("panicked" in log for log in logs)


def _stop_points(kafka_brokers, redis_url, tmp_path, rounds: int, stops: int, sig):
    """Runs stopped by `sig` at random moments, then drained; (stops landed mid-run, those
    after which the judge found nothing lost, doubled or over-committed, the judge's
    totals, the stopped runs' logs)."""
    rnd = random.Random(2026)
    landed = survived = 0
    totals: dict = {}
    logs: list[str] = []
    for r in range(rounds):
        work = tmp_path / f"round-{r}"
        work.mkdir()
        trace = generated_trace(work, events=30_000 if rounds > 1 else 20_000, seed=100 + r,
                                skus=300, stores=8)
        run = LiveRun(kafka_brokers, redis_url, unique_prefix(), work)
        run.env["STOCKFLOW_KAFKA_BATCH_SIZE"] = "50"  # many small epochs
        run.create_topics(LAYOUT)
        run.produce([line for line in trace.read_bytes().splitlines() if line.strip()],
                    topic_of)
        here = 0
        for _ in range(stops):
            written = run.written()
            proc = run.start("--drain")
            wait_for = rnd.randint(300, 1500)  # outputs before the stop: a random moment
            while proc.poll() is None and run.written() < written + wait_for:
                time.sleep(0.01)
            time.sleep(rnd.random() * 0.2)  # mid-batch, mid-snapshot, mid-flush
            if proc.poll() is None:
                proc.send_signal(sig)
                here += 1
                proc.wait()
                logs.append(run.log())
            proc.wait()
        run.drain()
        figures = judge(run)
        clean = (figures["lines_lost"] == figures["effects_lost"] ==
                 figures["effects_duplicated"] == figures["over_committed"] == 0
                 and figures["availability_as_replay"])
        landed += here
        survived += here if clean else 0
        for k, v in figures.items():
            totals[k] = totals.get(k, 0) + v if not isinstance(v, bool) else totals.get(k, True) and v
    return landed, survived, totals, logs
