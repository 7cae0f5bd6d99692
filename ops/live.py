"""`stockflow run`: the live engine between Kafka topics, with Redis and a recovery store.

Kafka offsets live only in Bytewax's recovery store, so live mode always runs with one: it is
created on first start, snapshotted every `snapshot_interval_s`, and a restart resumes from
the last snapshot. Outputs between that snapshot and the stop are written again; command ids
are deterministic, so consumers drop the repeats by id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from datetime import timedelta

import msgspec
import redis
from bytewax.run import cli_main

from stockflow.connectors import recovery_store
from stockflow.connectors.kafka_admin import input_topics, journal_topic, missing_topics
from stockflow.connectors.kafka_source import stop_reading
from stockflow.connectors.read_model_reader import ReadModelReader
from stockflow.connectors.redis_connect import connect
from stockflow.connectors.redis_store import ReadModelStore
from stockflow.dataflows.kafka_flow import live_flow
from stockflow.dataflows.logic import AlignTiming

from . import cluster, engine_lock, gc_pauses, recovery
from .api import ReadApi
from .config import Config
from .health import EngineHealth
from .http_server import BytewaxPassThrough, serve_in_background
from .masking import masked_url
from .metrics import REGISTRY, Observer, ReservationCollector
from .recovery import SOURCE_STEP

log = logging.getLogger(__name__)

STOP_GRACE_S = 3.0  # a stop that has not wound the flow down by then is forced


class LiveError(Exception):
    pass


def _refusal(reason: str, message: str, **fields) -> LiveError:
    """A refusal to start: a log line with its fields for whoever collects logs, and the
    error that ends the command with `message`, one readable line."""
    log.error("refused", extra={"reason": reason, **fields})
    return LiveError(message)


class FormationError(LiveError):
    """This process could not listen on its cluster address (exit code FORMATION_FAILED)."""


def redis_client(config: Config):
    """`redis.Redis`, or `RedisCluster` with `[redis] cluster`; raises RedisRefused (one line)
    when the server is not of that kind, a redis.RedisError when it cannot be reached."""
    r = config.redis
    return connect(r.url, r.cluster, r.timeout_s)


def run(config: Config, processes: int = 1, process_id: int | None = None,
        addresses: list[str] | None = None, config_path: str | None = None,
        drain: bool = False, from_scratch: bool = False) -> None:
    """Run until stopped (SIGTERM or Ctrl-C); `drain`: stop at the end of the input topics;
    `from_scratch`: a new recovery store may start although the output topics hold commands
    or the broker's marks say its partitions were made before (see ops/recovery.py)."""
    launcher = processes > 1 and process_id is None
    stopping: list[int] = []
    if not launcher:  # a launcher passes a stop on to its workers (ops/workers.py)
        _stop_on_signals(stopping)
    k = config.kafka
    needed = input_topics(k.topic_prefix)
    if config.redis.enabled:  # checkout holds taken in are journalled there
        needed.append(journal_topic(k.topic_prefix))
    missing = missing_topics(k.brokers, needed, k.client)
    if missing:
        raise _refusal("topics_missing", f"topics missing on {k.brokers}: "
                       f"{', '.join(missing)} (create them with `stockflow topics create`)",
                       brokers=k.brokers, topics=missing)
    with _engine_lock(config, process_id) as lock_fd:
        size = len(addresses) if addresses else processes
        try:  # each process checks its own recovery directory against the broker
            recovery_config, shape = recovery.prepare(config, size, process_id, from_scratch)
        except recovery.StoreRefused as exc:
            raise _refusal("recovery_store", str(exc), recovery=config.recovery.dir) from None
        if launcher:
            _launch(config, processes, config_path, drain, lock_fd)
        else:
            _run_engine(config, shape, recovery_config, process_id, addresses, drain, stopping)


def _stop_on_signals(stopping: list[int]) -> None:
    """SIGTERM and SIGINT stop the flow gracefully; a second one, or the first one's grace
    running out, stops it at once. `stopping` gets the signal."""

    def stop(signum, frame):
        if stopping:  # a second signal, or the first one's grace is over: stop at once
            raise KeyboardInterrupt  # Bytewax checks for signals in its loop
        stopping.append(signum)
        # Gracefully: the sources end at their next batch, the flow winds down, the sink
        # flushes, and what was read but not yet decided waits in the state.
        stop_reading()
        timer = threading.Timer(STOP_GRACE_S, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


@contextlib.contextmanager
def _engine_lock(config: Config, process_id: int | None):
    """The recovery directory's lock for an engine that holds all of it (see engine_lock);
    None for a process of a cluster started one by one."""
    if process_id is not None:
        yield None
        return
    try:
        with engine_lock.held(config.recovery.dir) as fd:
            yield fd
    except engine_lock.EngineRunning as exc:
        raise _refusal("engine_running", str(exc), recovery=config.recovery.dir) from None


def _launch(config: Config, processes: int, config_path: str | None, drain: bool,
            lock_fd: int) -> None:
    """`--processes N`: N worker processes of one cluster on this host, until they stop."""
    args = (["--config", config_path] if config_path else []) + (["--drain"] if drain else [])
    # Members load the config again; --log-level / --log-format reach them this way.
    env = {"STOCKFLOW_LOG_LEVEL": config.log.level, "STOCKFLOW_LOG_FORMAT": config.log.format}
    try:
        cluster.run_local(processes, args, env, pass_fds=(lock_fd,))
    except cluster.ClusterError as exc:
        raise LiveError(str(exc)) from None


def _run_engine(config: Config, shape: recovery.Shape, recovery_config, process_id: int | None,
                addresses: list[str] | None, drain: bool, stopping: list[int]) -> None:
    """This process's share of the flow (all of it without `addresses`), until it ends."""
    size = len(addresses) if addresses else 1
    k = config.kafka
    engine = msgspec.structs.replace(config.engine, buckets=shape.buckets)  # the store's
    _log_start(config, engine.buckets, process_id or 0, size, drain)
    if process_id in (None, 0):
        _log_resume_point(config)
    gc_pauses.shorten()
    observer = Observer()
    store = client = None
    if config.redis.enabled:
        try:
            client = redis_client(config)
            store = ReadModelStore(client, config.redis.prefix, config.redis.heartbeat_stale_s,
                                   on_error=observer.redis_error)
            store.start()  # the reservation API matches the engine that writes its keys
        except redis.RedisError as exc:
            raise _refusal("redis_unreachable",
                           f"cannot reach Redis at {masked_url(config.redis.url)}: "
                           f"{exc}", error=str(exc)) from None
        REGISTRY.register(ReservationCollector(client, store.keys.stats))
    _serve_http(config, process_id or 0, client)
    r = config.run
    timing = AlignTiming(idle_wait_s=r.idle_wait_s, tick_s=r.clock_tick_s,
                         waited_ms=r.tick_waited_ms, checkout_poll_ms=r.checkout_poll_ms,
                         max_ahead_s=r.max_ahead_s)
    flow = live_flow(engine, k.brokers, k.topic_prefix, k.client, k.batch_size,
                     timing, store, stop_at_end=drain, observer=observer,
                     delivery_timeout_s=k.delivery_timeout_s)
    try:
        cli_main(flow, process_id=process_id, addresses=addresses,
                 epoch_interval=timedelta(seconds=config.recovery.snapshot_interval_s),
                 recovery_config=recovery_config)
    except BaseException as exc:
        if not stopping and addresses and cluster.formation_failure(exc):
            raise FormationError(f"cannot form the cluster: process {process_id} cannot listen "
                                 f"on {addresses[process_id]} (address already in use)") from None
        if not stopping and addresses and _peer_lost(exc):
            raise LiveError("a process of the cluster stopped, and one dead process stops the "
                            "cluster; start every process again: each resumes from the last "
                            f"snapshot in {config.recovery.dir}") from None
        if not stopping:
            raise
        graceful = False  # forced: the grace ran out, or a second signal came
    else:
        graceful = True
    if stopping:
        log.info("stop", extra={"reason": signal.Signals(stopping[0]).name,
                                "graceful": graceful,
                                "next_start": "resumes from the last snapshot",
                                "recovery": config.recovery.dir})
    else:
        log.info("stop", extra={"reason": "drained" if drain else "input ended",
                                "recovery": config.recovery.dir})


def _log_start(config: Config, buckets: int, process_id: int, processes: int,
               drain: bool) -> None:
    k = config.kafka
    log.info("start", extra={
        "process_id": process_id, "processes": processes, "buckets": buckets,
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
    os.environ["BYTEWAX_DATAFLOW_API_PORT"] = str(bytewax_port := cluster.cluster_ports(1)[0])
    if client is None:  # no read model: the routes answer 503 until a Redis is there
        client = redis.Redis.from_url(config.redis.url, socket_timeout=config.redis.timeout_s)
    reader = ReadModelReader(client, config.redis.prefix, config.redis.heartbeat_stale_s)
    health = EngineHealth(reader, config.kafka, config.recovery.dir, SOURCE_STEP)
    try:
        serve_in_background(ReadApi(reader, health, BytewaxPassThrough(bytewax_port)),
                            config.run.metrics_host, port + process_id)
    except OSError as exc:
        raise LiveError(f"cannot serve metrics and the API on "
                        f"{config.run.metrics_host}:{port + process_id}: "
                        f"{exc.strerror}") from None


def _peer_lost(exc: BaseException) -> bool:
    """Whether Bytewax stopped because another member's connection broke (its panic)."""
    return type(exc).__name__ == "PanicException" and "thread panic" in str(exc)
