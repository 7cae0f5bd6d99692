"""kill -9 at random moments of a live run on the producers' layout, then a drain: nothing
lost, nothing done twice, nothing over-committed; with `-p 2`, kill -9 of the launcher alone
leaves no process of its engine behind."""

from __future__ import annotations

import os
import random
import signal
import time

from stockflow.ops.bench.kafka_runs import topic_of

from ..live_runs import LAYOUT, LiveRun, generated_trace
from ..processes import descendants, running
from ..servers import unique_prefix
from .figures import FIGURES
from .judge import judge


def test_kill_points(kafka_brokers, redis_url, tmp_path, full):
    rounds, kills = (5, 10) if full else (1, 3)
    landed, survived, totals, _ = _stop_points(kafka_brokers, redis_url, tmp_path, rounds, kills,
                                               signal.SIGKILL)
    del totals["workers_seen"], totals["left_behind"], totals["gone_after_s"]  # one process
    FIGURES.add("kill -9 (master 1, stock 3, orders 3 partitions)",
                kill_points_survived=f"{survived}/{landed}", **{
                    k: v for k, v in totals.items() if k != "dead_letters"})
    assert landed >= rounds * kills * 2 // 3, f"only {landed} kills landed mid-run"
    assert survived == landed, totals


def test_kill_9_of_the_launcher_alone_leaves_nothing_behind(kafka_brokers, redis_url, tmp_path,
                                                            full):
    """`stockflow run -p 2` killed as a supervisor that knows only its main pid kills it (the
    launcher alone, not its process group): its workers die with it, and the restarts and the
    drain decide as the replay."""
    rounds, kills = (3, 10) if full else (1, 3)
    landed, survived, totals, _ = _stop_points(kafka_brokers, redis_url, tmp_path, rounds, kills,
                                               signal.SIGKILL, "-p", "2")
    seen, left = totals.pop("workers_seen"), totals.pop("left_behind")
    gone_s = totals.pop("gone_after_s")
    FIGURES.add("kill -9 of the launcher alone, 2 processes (same layout)",
                kill_points_survived=f"{survived}/{landed}", processes_left_behind=left,
                workers_gone_within_s=round(gone_s, 2),
                **{k: v for k, v in totals.items() if k != "dead_letters"})
    assert landed >= rounds * kills * 2 // 3, f"only {landed} kills landed mid-run"
    assert seen == 2 * landed, f"{seen} workers seen at {landed} kills"  # the check had some
    assert left == 0, f"{left} processes of killed engines were still running"
    assert survived == landed, totals


def test_sigterm_points_wind_down_gracefully(kafka_brokers, redis_url, tmp_path, full):
    """SIGTERM at random moments: each stop winds the flow down (no forced stop, no panic),
    keeps what the merge held for the next start, and the drain after decides as replay."""
    rounds, stops = (2, 6) if full else (1, 3)
    landed, survived, totals, logs = _stop_points(kafka_brokers, redis_url, tmp_path, rounds,
                                                  stops, signal.SIGTERM)
    del totals["workers_seen"], totals["left_behind"], totals["gone_after_s"]
    graceful = sum(log.count(" graceful=true ") for log in logs)
    FIGURES.add("SIGTERM (master 1, stock 3, orders 3 partitions)",
                stop_points_survived=f"{survived}/{landed}", graceful=f"{graceful}/{landed}",
                **{k: v for k, v in totals.items() if k != "dead_letters"})
    assert landed >= rounds * stops * 2 // 3, f"only {landed} stops landed mid-run"
    assert survived == landed, totals
    assert graceful == landed and not any("panicked" in log for log in logs)


def _stop_points(kafka_brokers, redis_url, tmp_path, rounds: int, stops: int, sig, *args: str):
    """Runs (`stockflow run --drain *args`) stopped by `sig` to the engine's main process at
    random moments, then drained; (stops landed mid-run, those after which the judge found
    nothing lost, doubled or over-committed, the judge's totals with the processes the
    stopped engines had started, those still alive 5 s after its main process ended and how
    long they took to go, the stopped runs' logs)."""
    rnd = random.Random(2026)
    landed = survived = 0
    totals: dict = {"workers_seen": 0, "left_behind": 0, "gone_after_s": 0.0}
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
            proc = run.start("--drain", *args)
            wait_for = rnd.randint(300, 1500)  # outputs before the stop: a random moment
            while proc.poll() is None and run.written() < written + wait_for:
                time.sleep(0.01)
            time.sleep(rnd.random() * 0.2)  # mid-batch, mid-snapshot, mid-flush
            if proc.poll() is None:
                engine = descendants(proc.pid)
                proc.send_signal(sig)
                here += 1
                proc.wait()
                logs.append(run.log())
                left, gone_s = _left_behind(engine)
                totals["workers_seen"] += len(engine)
                totals["left_behind"] += left
                totals["gone_after_s"] = max(totals["gone_after_s"], gone_s)
            proc.wait()
        run.drain(*args)
        figures = judge(run)
        clean = (figures["lines_lost"] == figures["effects_lost"] ==
                 figures["effects_duplicated"] == figures["over_committed"] == 0
                 and figures["availability_as_replay"])
        landed += here
        survived += here if clean else 0
        for k, v in figures.items():
            totals[k] = totals.get(k, 0) + v if not isinstance(v, bool) else totals.get(k, True) and v
    return landed, survived, totals, logs


def _left_behind(pids: list[int], wait_s: float = 5.0) -> tuple[int, float]:
    """How many of `pids` still run `wait_s` after their engine's main process ended (they
    are killed then, so the next start is alone), and how long the others took to go."""
    ended = time.monotonic()
    while any(running(p) for p in pids) and time.monotonic() < ended + wait_s:
        time.sleep(0.01)
    took = time.monotonic() - ended
    left = [p for p in pids if running(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return len(left), took
