"""The engine's processes as one: SIGTERM of `stockflow run -p N` winds every process down in
about the time one process takes, and a second engine on the same recovery directory is
refused while the first runs."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import pytest

from stockflow.ops.bench.kafka_runs import topic_of
from stockflow.ops.live import STOP_GRACE_S

from ..live_runs import LAYOUT, LiveRun, generated_trace
from ..servers import unique_prefix
from .figures import FIGURES


def started_run(kafka_brokers, redis_url, tmp_path, events: int = 20_000) -> LiveRun:
    trace = generated_trace(tmp_path, events=events, seed=41, skus=300, stores=8)
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.env["STOCKFLOW_KAFKA_BATCH_SIZE"] = "50"  # many small epochs: a stop lands mid-epoch
    run.create_topics(LAYOUT)
    run.produce([line for line in trace.read_bytes().splitlines() if line.strip()], topic_of)
    return run


def until_writing(run: LiveRun, proc, more: int = 200, timeout: float = 60) -> None:
    """Waits until the engine has written `more` outputs since now."""
    start, deadline = run.written(), time.monotonic() + timeout
    while proc.poll() is None and run.written() < start + more:
        assert time.monotonic() < deadline, f"nothing written in {timeout} s:\n{run.log()}"
        time.sleep(0.02)
    assert proc.poll() is None, f"the engine stopped on its own:\n{run.log()}"


@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_winds_the_engine_down_in_about_one_process_time(kafka_brokers, redis_url,
                                                                 tmp_path, processes, full):
    """SIGTERM to the engine (the launcher, for `-p 2`) mid-run: every process winds down
    gracefully and the engine exits 0, in about the time one process takes."""
    run = started_run(kafka_brokers, redis_url, tmp_path)
    took: list[float] = []
    for _ in range(5 if full else 3):
        proc = run.start("-p", str(processes))
        until_writing(run, proc)
        asked = time.monotonic()
        proc.terminate()
        code = proc.wait(timeout=60)
        took.append(time.monotonic() - asked)
        log = run.log()
        assert code == 0, log[-3000:]
        stops = [line for line in log.splitlines() if " event=stop " in line]
        assert len(stops) == processes and all(" graceful=true " in s for s in stops), log
    FIGURES.add(f"SIGTERM mid-run, {processes} process{'es' if processes > 1 else ''}",
                stops=len(took), exit_code=0, graceful=f"{len(took)}/{len(took)}",
                median_s=round(statistics.median(took), 2), max_s=round(max(took), 2))
    # Generous (a graceful stop takes a fraction of it here), yet a stop that waited for the
    # grace after which one is forced would not pass.
    assert max(took) < STOP_GRACE_S, took


def test_a_second_engine_on_the_same_recovery_directory_is_refused(kafka_brokers, redis_url,
                                                                    tmp_path):
    run = started_run(kafka_brokers, redis_url, tmp_path, events=6_000)
    first = run.start("-p", "2")
    try:
        until_writing(run, first, more=50)
        second = subprocess.run([sys.executable, "-m", "stockflow.ops.cli", "run", "--drain"],
                                env=run.env, capture_output=True, text=True, timeout=60,
                                check=False)
        assert first.poll() is None, "the running engine stopped"
    finally:
        first.terminate()
        stopped = first.wait(timeout=60)
    lines = second.stderr.strip().splitlines()
    FIGURES.add("second engine on a running engine's recovery directory",
                exit_code=second.returncode,
                said=lines[-1].replace(str(tmp_path), "...") if lines else "")
    assert second.returncode == 1, second.stderr
    # the refusal's log line for whoever collects logs, then the one line for the operator
    assert "Traceback" not in second.stderr and lines[-1] == (
        f"stockflow: error: refusing to start: another engine is running on the recovery "
        f"store {tmp_path / 'recovery'} (pid {first.pid} holds "
        f"{tmp_path / 'recovery' / 'engine.lock'}); stop it first"), second.stderr
    assert stopped == 0, run.log()[-3000:]
    # Once the first has stopped, the directory is free.
    again = run.start("--drain")
    assert again.wait(timeout=120) == 0, run.log()[-3000:]
