"""`stockflow run`: the live engine between Kafka topics, with Redis and a recovery store.

Kafka offsets live only in Bytewax's recovery store, so live mode always runs with one: it is
created on first start, snapshotted every `snapshot_interval_s`, and a restart resumes from
the last snapshot. Outputs between that snapshot and the stop are written again; command ids
are deterministic, so consumers drop the repeats by id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import redis
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main

from stockflow.connectors.kafka_admin import input_topics, missing_topics
from stockflow.connectors.redis_store import ReadModelStore
from stockflow.connectors.reservations import install
from stockflow.dataflows.live import live_flow

from .config import Config
from .metrics import REGISTRY, Observer, ReservationCollector
from .replay import free_ports

RECOVERY_PARTITIONS = 1


class LiveError(Exception):
    pass


def redis_client(config: Config) -> redis.Redis:
    timeout = config.redis.timeout_s
    return redis.Redis.from_url(config.redis.url, socket_timeout=timeout,
                                socket_connect_timeout=timeout)


def run(config: Config, processes: int = 1, process_id: int | None = None,
        addresses: list[str] | None = None, config_path: str | None = None,
        drain: bool = False) -> None:
    """Run until stopped (SIGTERM or Ctrl-C); `drain`: stop at the end of the input topics."""
    stopping: list[int] = []

    def stop(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt  # Bytewax checks for signals in its loop and stops the flow

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    recovery = _recovery(config)
    if processes > 1 and process_id is None:
        _run_cluster(processes, config_path, drain)  # passes a stop on to its members
        return
    observer = Observer()
    store = None
    if config.redis.enabled:
        client = redis_client(config)
        try:
            install(client)  # the reservation API matches the engine that writes its keys
        except redis.RedisError as exc:
            raise LiveError(f"cannot reach Redis at {config.redis.url}: {exc}") from None
        store = ReadModelStore(client, config.redis.prefix, config.redis.heartbeat_stale_s,
                               on_error=observer.redis_error)
        REGISTRY.register(ReservationCollector(client, store.keys.stats))
    _serve_metrics(config.run.metrics_port, process_id or 0)
    k = config.kafka
    missing = missing_topics(k.brokers, input_topics(k.topic_prefix), k.client)
    if missing:
        raise LiveError(f"input topics missing on {k.brokers}: {', '.join(missing)} "
                        "(create them with `stockflow topics create`)")
    flow = live_flow(config.engine, k.brokers, k.topic_prefix, k.client, k.batch_size,
                     config.run.clock_tick_s, store, stop_at_end=drain, observer=observer)
    try:
        cli_main(flow, process_id=process_id, addresses=addresses,
                 epoch_interval=timedelta(seconds=config.recovery.snapshot_interval_s),
                 recovery_config=recovery)
    except BaseException:
        if not stopping:
            raise
        name = signal.Signals(stopping[0]).name
        print(f"stockflow: stopped by {name}; the next start resumes from the last snapshot "
              f"in {config.recovery.dir}", file=sys.stderr)


def _serve_metrics(port: int, process_id: int) -> None:
    """/metrics from Bytewax's dataflow API server, which serves the default registry with its
    own metrics; process i of a cluster listens on port + i."""
    if port:
        os.environ["BYTEWAX_DATAFLOW_API_ENABLED"] = "true"
        os.environ["BYTEWAX_DATAFLOW_API_PORT"] = str(port + process_id)


def _recovery(config: Config) -> RecoveryConfig:
    path = Path(config.recovery.dir)
    if not path.exists() or not any(path.iterdir()):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, RECOVERY_PARTITIONS)
    backup = config.recovery.backup_interval_s
    return RecoveryConfig(str(path), timedelta(seconds=backup) if backup else None)


def _run_cluster(processes: int, config_path: str | None, drain: bool) -> None:
    addresses = ";".join(f"127.0.0.1:{port}" for port in free_ports(processes))
    base = [sys.executable, "-m", "stockflow.ops.cli", "run", "--addresses", addresses]
    if config_path:
        base += ["--config", config_path]
    if drain:
        base.append("--drain")
    procs = [subprocess.Popen(base + ["--process-id", str(i)], env=os.environ)
             for i in range(processes)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait() for p in procs]
    if any(c not in (0, 130) for c in codes):
        raise LiveError(f"a worker process failed (exit codes {codes})")
