"""A launcher's worker processes (ops/workers.py, ops/parent_death.py): they die with it
whatever kills it, hear a stop once, from it, and one started after its launcher died does
not run; one engine per recovery directory (ops/engine_lock.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from stockflow.ops import engine_lock
from stockflow.ops.generate import Scenario, write_jsonl

from .processes import descendants, running

# A worker: tied to its launcher, says it is up, counts the stops it hears, ends at the first
# after a moment (as a live worker winds down).
WORKER = """
import os, signal, sys, time
from stockflow.ops.parent_death import die_with_launcher
die_with_launcher()
heard = []
def say(what):  # one write: the two workers share the file
    os.write(1, what.encode() + b"\\n")
def stop(signum, frame):
    heard.append(signum)
    say("heard " + signal.Signals(signum).name)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
say("up")
while not heard:
    time.sleep(0.01)
time.sleep(0.3)
sys.exit(0)
"""

# A launcher of two such workers: prints their pids, waits for them, prints their exit codes.
LAUNCHER = """
import os, sys
from stockflow.ops.workers import Workers
workers = Workers([[sys.executable, "-c", sys.argv[1]]] * 2, dict(os.environ))
print(*workers.pids, flush=True)
print("codes", *workers.wait(), flush=True)
"""


def launch(tmp_path) -> tuple[subprocess.Popen, list[int], object]:
    out = open(tmp_path / "out", "w+")
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, WORKER], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while (text := open(tmp_path / "out").read()).count("up") < 2:
        assert time.monotonic() < deadline and launcher.poll() is None, text
        time.sleep(0.02)
    return launcher, [int(p) for p in text.splitlines()[0].split()], out


def test_workers_die_with_a_launcher_killed_with_sigkill(tmp_path):
    launcher, pids, _ = launch(tmp_path)
    assert all(running(p) for p in pids)
    os.kill(launcher.pid, signal.SIGKILL)  # the launcher alone, not its process group
    launcher.wait()
    deadline = time.monotonic() + 5
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    left = [p for p in pids if running(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {left} outlived their launcher"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_reaches_each_worker_once_and_the_launcher_waits_for_them(tmp_path, sig):
    """Sent to the launcher's whole process group (a Ctrl-C at the terminal): each worker
    hears it once, from the launcher (twice would force a live worker's stop)."""
    launcher, pids, _ = launch(tmp_path)
    asked = time.monotonic()
    os.killpg(launcher.pid, sig)
    assert launcher.wait(timeout=30) == 0
    took = time.monotonic() - asked
    text = open(tmp_path / "out").read()
    assert text.count(f"heard {sig.name}") == 2 and text.count("heard") == 2, text
    assert text.splitlines()[-1] == "codes 0 0", text
    assert 0.3 <= took < 5, took  # waited for the workers' wind-down, no longer
    assert not any(running(p) for p in pids)


def test_a_worker_whose_launcher_is_gone_does_not_run(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    env = {**os.environ, "STOCKFLOW_LAUNCHER_PID": str(gone.pid),
           "STOCKFLOW_RECOVERY_DIR": str(tmp_path / "recovery")}
    worker = subprocess.run([sys.executable, "-m", "stockflow.ops.cli", "run"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert worker.returncode == 1
    assert worker.stderr.splitlines() == [f"stockflow: error: the process that started this "
                                          f"worker (pid {gone.pid}) is gone"], worker.stderr
    assert not (tmp_path / "recovery").exists()


def test_the_engine_lock_is_held_until_every_process_holding_it_has_exited(tmp_path):
    directory = str(tmp_path / "recovery")
    with engine_lock.held(directory) as fd:
        with pytest.raises(engine_lock.EngineRunning, match=f"pid {os.getpid()} holds"):
            with engine_lock.held(directory, wait_s=0.1):
                pass
        # a worker inherits the open file: the lock outlives the launcher's descriptor
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"],
                                  pass_fds=(fd,))
    with pytest.raises(engine_lock.EngineRunning):
        with engine_lock.held(directory, wait_s=0.1):
            pass
    worker.wait()
    with engine_lock.held(directory, wait_s=0.1):  # free once the worker exited
        pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_replay_of_two_processes_stops_whole(tmp_path, sig):
    """`stockflow replay --processes 2`: its launcher stopped (SIGTERM, passed on to the
    workers) or killed (SIGKILL, the workers die with it) leaves no worker replaying."""
    trace, out = tmp_path / "events.jsonl", tmp_path / "out"
    with open(trace, "wb") as f:
        write_jsonl(Scenario(events=80_000, seed=5), f)  # replayed in several seconds here
    launcher = subprocess.Popen([sys.executable, "-m", "stockflow.ops.cli", "replay", str(trace),
                                 "--out", str(out), "--processes", "2", "--quiet"],
                                stderr=open(tmp_path / "stderr", "w"))  # a pipe: see below
    deadline = time.monotonic() + 30
    while len(workers := descendants(launcher.pid)) < 2:
        assert time.monotonic() < deadline and launcher.poll() is None, "no workers"
        time.sleep(0.01)
    time.sleep(0.5)  # replaying
    assert launcher.poll() is None, "the replay ended before the stop: give it more events"
    os.kill(launcher.pid, sig)
    code = launcher.wait(timeout=30)
    deadline = time.monotonic() + 2  # well before they would have finished the replay
    while any(running(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    left = [p for p in workers if running(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"replay workers {left} outlived their launcher"
    # (read after: workers left behind would hold a pipe open until they ended)
    said = (tmp_path / "stderr").read_text().strip().splitlines()
    if sig == signal.SIGTERM:
        assert code == 1 and said[-1] == (f"stockflow: error: stopped by SIGTERM: the outputs "
                                          f"in {out} are partial"), said
