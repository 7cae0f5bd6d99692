"""Run the replay flow: in this process, or as a cluster of worker processes on this machine."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import msgspec
from bytewax.run import cli_main
from bytewax.testing import run_main

from stockflow.connectors.files import CHUNK_LINES
from stockflow.dataflows.replay import replay_flow
from stockflow.state.config import EngineConfig
from stockflow.state.outputs import STREAMS

from .cluster import cluster_ports
from .progress import progress
from .workers import Workers


class ReplayError(Exception):
    """A replay that could not run; the message is one readable line."""


def replay(events: str, out_dir: str, config: EngineConfig, processes: int = 1,
           chunk_lines: int = CHUNK_LINES, observer=None, show_progress: bool = True,
           record_times: str | None = None, max_ahead_s: float = 300.0) -> float:
    """Replays `events` into `out_dir`; returns the wall time in seconds. An `observer`
    (ops.metrics) sees every batch; it needs one process. `record_times`: a file of each
    line's Kafka record timestamp (ms, one a line, -1 for none), as recorded topics carry
    them: events stamped more than `max_ahead_s` after theirs are refused as live mode
    refused them (`ts_ahead`); one process."""
    if record_times is not None and processes > 1:
        raise ReplayError("record times need one process (--processes 1)")
    if events != "-" and not os.path.exists(events):
        raise ReplayError(f"no such events file: {events}")
    if os.path.isdir(events):
        raise ReplayError(f"{events} is a directory, not an events file")
    if processes > 1 and events == "-":
        raise ReplayError("reading stdin needs one process; pass a file for --processes > 1")
    if processes > 1 and observer is not None:
        raise ReplayError("metrics of a replay need one process (--processes 1)")
    os.makedirs(out_dir, exist_ok=True)
    for stream in STREAMS:  # every stream has its file, and none keeps an older run's lines
        open(os.path.join(out_dir, f"{stream}.jsonl"), "wb").close()
    started = time.perf_counter()
    if processes == 1:
        plain = events != "-" and not events.endswith(".gz")  # a size to measure against
        total = os.path.getsize(events) if plain else None
        with progress(f"replaying {os.path.basename(events)}", total, "bytes",
                      show_progress) as advance:
            run_main(replay_flow(events, out_dir, config, chunk_lines, observer, advance,
                                 record_times, max_ahead_s))
    else:
        _run_cluster(events, out_dir, config, processes, chunk_lines)
    return time.perf_counter() - started


MEMBER_ENGINE = "STOCKFLOW_REPLAY_MEMBER_ENGINE"  # the launcher's EngineConfig, as JSON


def member_engine(default: EngineConfig) -> EngineConfig:
    """A member's engine settings: its launcher's, where it was started by one."""
    given = os.environ.get(MEMBER_ENGINE)
    return default if given is None else msgspec.json.decode(given, type=EngineConfig)


def run_cluster_member(events: str, out_dir: str, config: EngineConfig, chunk_lines: int,
                       process_id: int, addresses: list[str]) -> None:
    """One process of a replay cluster (started by `_run_cluster`)."""
    cli_main(replay_flow(events, out_dir, config, chunk_lines),
             process_id=process_id, addresses=addresses)


def _run_cluster(events, out_dir, config: EngineConfig, processes: int, chunk_lines: int) -> None:
    addresses = ";".join(f"127.0.0.1:{port}" for port in cluster_ports(processes))
    base = [sys.executable, "-m", "stockflow.ops.cli", "replay", events, "--out", out_dir,
            "--chunk-lines", str(chunk_lines), "--addresses", addresses,
            "--log-level", _log_level()]
    # Every member runs the rules with this engine's settings, all of them, whatever flags
    # the command line has for them.
    env = {**os.environ, MEMBER_ENGINE: msgspec.json.encode(config).decode()}
    workers = Workers([base + ["--process-id", str(i)] for i in range(processes)], env)
    codes = workers.wait()
    if workers.stopped_by == signal.SIGINT:
        raise KeyboardInterrupt  # as Ctrl-C stops a replay of one process
    if workers.stopped_by is not None:
        raise ReplayError(f"stopped by {signal.Signals(workers.stopped_by).name}: the outputs "
                          f"in {out_dir} are partial")
    if any(codes):
        raise ReplayError(f"a replay worker process failed (exit codes {codes})")


def _log_level() -> str:
    """The level this process logs at, for its worker processes to log at too."""
    level = logging.getLogger("stockflow").getEffectiveLevel()
    return logging.getLevelName(min(max(level, logging.DEBUG), logging.ERROR)).lower()

