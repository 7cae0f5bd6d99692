"""`stockflow run`: the live engine between Kafka topics, with Redis and a recovery store.

Kafka offsets live only in Bytewax's recovery store, so live mode always runs with one: it is
created on first start, snapshotted every `snapshot_interval_s`, and a restart resumes from
the last snapshot. Outputs between that snapshot and the stop are written again; command ids
are deterministic, so consumers drop the repeats by id.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import redis
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main

from stockflow.connectors import recovery_store
from stockflow.connectors.kafka_admin import (
    end_offsets,
    holds_offset,
    input_topics,
    missing_topics,
    output_topics,
)
from stockflow.connectors.redis_connect import connect
from stockflow.connectors.read_model_reader import ReadModelReader
from stockflow.connectors.redis_store import ReadModelStore
from stockflow.dataflows.live import live_flow
from stockflow.dataflows.logic import AlignTiming

from .api import ReadApi
from .config import Config
from .health import EngineHealth
from .http_server import BytewaxPassThrough, serve_in_background
from .metrics import REGISTRY, Observer, ReservationCollector
from .replay import free_ports

SOURCE_STEP = "stockflow_live.read"  # the step whose snapshots hold the input offsets
STARTED = "stockflow-started"  # written into a recovery store on its first start


log = logging.getLogger(__name__)


class LiveError(Exception):
    pass


def _refusal(reason: str, message: str, **fields) -> LiveError:
    """A refusal to start: a log line with its fields for whoever collects logs, and the
    error that ends the command with `message`, one readable line."""
    log.error("refused", extra={"reason": reason, **fields})
    return LiveError(message)


def redis_client(config: Config):
    """`redis.Redis`, or `RedisCluster` with `[redis] cluster`; raises RedisRefused (one line)
    when the server is not of that kind, a redis.RedisError when it cannot be reached."""
    r = config.redis
    return connect(r.url, r.cluster, r.timeout_s)


def run(config: Config, processes: int = 1, process_id: int | None = None,
        addresses: list[str] | None = None, config_path: str | None = None,
        drain: bool = False, from_scratch: bool = False) -> None:
    """Run until stopped (SIGTERM or Ctrl-C); `drain`: stop at the end of the input topics;
    `from_scratch`: a new recovery store may start although the output topics hold commands."""
    stopping: list[int] = []

    def stop(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt  # Bytewax checks for signals in its loop and stops the flow

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    k = config.kafka
    missing = missing_topics(k.brokers, input_topics(k.topic_prefix), k.client)
    if missing:
        raise _refusal("topics_missing", f"input topics missing on {k.brokers}: "
                       f"{', '.join(missing)} (create them with `stockflow topics create`)",
                       brokers=k.brokers, topics=missing)
    if process_id in (None, 0):  # one member checks for the cluster
        _check_recovery_against_broker(config, from_scratch)
    recovery = _recovery(config, len(addresses) if addresses else processes)
    if processes > 1 and process_id is None:
        _run_cluster(processes, config_path, drain, config)  # passes a stop on to its members
        return
    _log_start(config, process_id or 0, len(addresses) if addresses else 1, drain)
    if process_id in (None, 0):
        _log_resume_point(config)
    observer = Observer()
    store = client = None
    if config.redis.enabled:
        try:
            client = redis_client(config)
            store = ReadModelStore(client, config.redis.prefix, config.redis.heartbeat_stale_s,
                                   on_error=observer.redis_error)
            store.start()  # the reservation API matches the engine that writes its keys
        except redis.RedisError as exc:
            raise _refusal("redis_unreachable", f"cannot reach Redis at {config.redis.url}: "
                           f"{exc}", error=str(exc)) from None
        REGISTRY.register(ReservationCollector(client, store.keys.stats))
    _serve_http(config, process_id or 0, client)
    r = config.run
    timing = AlignTiming(idle_wait_s=r.idle_wait_s, tick_s=r.clock_tick_s,
                         waited_ms=r.tick_waited_ms)
    flow = live_flow(config.engine, k.brokers, k.topic_prefix, k.client, k.batch_size,
                     timing, store, stop_at_end=drain, observer=observer,
                     delivery_timeout_s=k.delivery_timeout_s)
    try:
        cli_main(flow, process_id=process_id, addresses=addresses,
                 epoch_interval=timedelta(seconds=config.recovery.snapshot_interval_s),
                 recovery_config=recovery)
    except BaseException:
        if not stopping:
            raise
        log.info("stop", extra={"reason": signal.Signals(stopping[0]).name,
                                "next_start": "resumes from the last snapshot",
                                "recovery": config.recovery.dir})
        return
    log.info("stop", extra={"reason": "drained" if drain else "input ended",
                            "recovery": config.recovery.dir})


def _log_start(config: Config, process_id: int, processes: int, drain: bool) -> None:
    k = config.kafka
    log.info("start", extra={
        "process_id": process_id, "processes": processes, "buckets": config.engine.buckets,
        "brokers": k.brokers, "topic_prefix": k.topic_prefix,
        "redis": "on" if config.redis.enabled else "off", "recovery": config.recovery.dir,
        "snapshot_interval_s": config.recovery.snapshot_interval_s, "drain": drain})


def _log_resume_point(config: Config) -> None:
    """Where this start resumes, read from the recovery store as Bytewax will read it."""
    point = recovery_store.resume_point(config.recovery.dir, SOURCE_STEP)
    if point.epoch is None:
        log.info("resume", extra={"from": "scratch"})
    else:  # partitions without an offset here are read from their beginning
        log.info("resume", extra={"from": "snapshot", "epoch": point.epoch,
                                  "offsets": point.offsets})


def _serve_http(config: Config, process_id: int, client) -> None:
    """/metrics and the read API (/v1/...) on the metrics port; process i of a cluster listens
    on port + i. Bytewax's dataflow API server, which adds its step timings to our metrics,
    runs on a private port behind it."""
    port = config.run.metrics_port
    if not port:
        return
    os.environ["BYTEWAX_DATAFLOW_API_ENABLED"] = "true"
    os.environ["BYTEWAX_DATAFLOW_API_PORT"] = str(bytewax_port := free_ports(1)[0])
    if client is None:  # no read model: the routes answer 503 until a Redis is there
        client = redis.Redis.from_url(config.redis.url, socket_timeout=config.redis.timeout_s)
    reader = ReadModelReader(client, config.redis.prefix, config.redis.heartbeat_stale_s)
    health = EngineHealth(reader, config.kafka, config.recovery.dir, SOURCE_STEP)
    try:
        serve_in_background(ReadApi(reader, health, BytewaxPassThrough(bytewax_port)),
                            "0.0.0.0", port + process_id)
    except OSError as exc:
        raise LiveError(f"cannot serve metrics and the API on port {port + process_id}: "
                        f"{exc.strerror}") from None


def _recovery(config: Config, workers: int) -> RecoveryConfig:
    """The recovery store, made on first start with a partition per worker (each worker
    writes its snapshots into its own SQLite file)."""
    path = Path(config.recovery.dir)
    if not path.exists() or not any(path.iterdir()):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, max(1, workers))
        (path / STARTED).write_text("")
    backup = config.recovery.backup_interval_s
    return RecoveryConfig(str(path), timedelta(seconds=backup) if backup else None)


def _check_recovery_against_broker(config: Config, from_scratch: bool) -> None:
    """Refuse, in one line, to start where the recovery store and the broker disagree: a
    new store while the output topics already hold commands (the store was lost or another
    engine wrote them), or stored offsets past the end of the input (the broker lost data,
    and resuming there would skip whatever is written next)."""
    path, k = Path(config.recovery.dir), config.kafka
    # New: never started here (a store from before the marker holds snapshots instead).
    new = not (path / STARTED).exists() and recovery_store.is_empty(path)
    if new and not from_scratch:
        written = {t: high - low for t, (low, high) in
                   end_offsets(k.brokers, output_topics(k.topic_prefix), k.client).items()
                   if high > low}
        if written:
            where = ", ".join(f"{t} ({n})" for t, n in sorted(written.items())[:3])
            raise _refusal(
                "outputs_without_store",
                f"refusing to start: the recovery store {path} is new but the output topics "
                f"already hold commands: {where}; restore the recovery store, or pass "
                "--from-scratch to process every input again (consumers drop repeats by "
                "command id)", recovery=str(path), outputs=dict(sorted(written.items())))
    if not path.exists():
        return
    ends = end_offsets(k.brokers, input_topics(k.topic_prefix), k.client)
    for part, offset in sorted(recovery_store.stored_offsets(path, SOURCE_STEP).items()):
        end = ends.get(part, (0, 0))[1]
        if offset > end and not holds_offset(k.brokers, part, offset - 1, k.client):
            raise _refusal(
                "broker_lost_data",
                f"refusing to start: the recovery store {path} has read {part} up to offset "
                f"{offset} but the broker's partition ends at {end}: the broker lost data; "
                "restore it, or move the recovery store aside and start over",
                recovery=str(path), partition=part, stored_offset=offset, broker_end=end)


def _run_cluster(processes: int, config_path: str | None, drain: bool, config: Config) -> None:
    addresses = ";".join(f"127.0.0.1:{port}" for port in free_ports(processes))
    log.info("start_cluster", extra={"processes": processes, "addresses": addresses})
    # Members load the config again; --log-level / --log-format reach them this way.
    env = {**os.environ, "STOCKFLOW_LOG_LEVEL": config.log.level,
           "STOCKFLOW_LOG_FORMAT": config.log.format}
    base = [sys.executable, "-m", "stockflow.ops.cli", "run", "--addresses", addresses]
    if config_path:
        base += ["--config", config_path]
    if drain:
        base.append("--drain")
    procs = [subprocess.Popen(base + ["--process-id", str(i)], env=env)
             for i in range(processes)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait() for p in procs]
    if any(c not in (0, 130) for c in codes):
        raise LiveError(f"a worker process failed (exit codes {codes})")
