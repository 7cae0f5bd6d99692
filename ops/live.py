"""`stockflow run`: the live engine between Kafka topics, with Redis and a recovery store.

Kafka offsets live only in Bytewax's recovery store, so live mode always runs with one: it is
created on first start, snapshotted every `snapshot_interval_s`, and a restart resumes from
the last snapshot. Outputs between that snapshot and the stop are written again; command ids
are deterministic, so consumers drop the repeats by id.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta

import msgspec
import redis
from bytewax.run import cli_main

from stockflow.connectors.kafka_admin import input_topics, missing_topics
from stockflow.connectors.redis_store import ReadModelStore
from stockflow.dataflows.live import live_flow
from stockflow.dataflows.logic import AlignTiming

from . import cluster, recovery
from .config import Config
from .metrics import REGISTRY, Observer, ReservationCollector


class LiveError(Exception):
    pass


class FormationError(LiveError):
    """This process could not listen on its cluster address (exit code FORMATION_FAILED)."""


def redis_client(config: Config) -> redis.Redis:
    timeout = config.redis.timeout_s
    return redis.Redis.from_url(config.redis.url, socket_timeout=timeout,
                                socket_connect_timeout=timeout)


def run(config: Config, processes: int = 1, process_id: int | None = None,
        addresses: list[str] | None = None, config_path: str | None = None,
        drain: bool = False, from_scratch: bool = False) -> None:
    """Run until stopped (SIGTERM or Ctrl-C); `drain`: stop at the end of the input topics;
    `from_scratch`: a new recovery store may start although the output topics hold commands
    or the broker's marks say its partitions were made before (see ops/recovery.py)."""
    stopping: list[int] = []

    def stop(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt  # Bytewax checks for signals in its loop and stops the flow

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    k = config.kafka
    missing = missing_topics(k.brokers, input_topics(k.topic_prefix), k.client)
    if missing:
        raise LiveError(f"input topics missing on {k.brokers}: {', '.join(missing)} "
                        "(create them with `stockflow topics create`)")
    size = len(addresses) if addresses else processes
    try:  # each process checks its own recovery directory against the broker
        recovery_config, shape = recovery.prepare(config, size, process_id, from_scratch)
    except recovery.StoreRefused as exc:
        raise LiveError(str(exc)) from None
    if processes > 1 and process_id is None:
        args = (["--config", config_path] if config_path else []) + (["--drain"] if drain else [])
        try:
            cluster.run_local(processes, args)  # passes a stop on to its members
        except cluster.ClusterError as exc:
            raise LiveError(str(exc)) from None
        return
    engine = msgspec.structs.replace(config.engine, buckets=shape.buckets)  # the store's
    observer = Observer()
    store = None
    if config.redis.enabled:
        client = redis_client(config)
        store = ReadModelStore(client, config.redis.prefix, config.redis.heartbeat_stale_s,
                               on_error=observer.redis_error)
        try:
            store.start()  # the reservation API matches the engine that writes its keys
        except redis.RedisError as exc:
            raise LiveError(f"cannot reach Redis at {config.redis.url}: {exc}") from None
        REGISTRY.register(ReservationCollector(client, store.keys.stats))
    _serve_metrics(config.run.metrics_port, process_id or 0)
    r = config.run
    timing = AlignTiming(idle_wait_s=r.idle_wait_s, tick_s=r.clock_tick_s,
                         waited_ms=r.tick_waited_ms)
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
        name = signal.Signals(stopping[0]).name
        print(f"stockflow: stopped by {name}; the next start resumes from the last snapshot "
              f"in {config.recovery.dir}", file=sys.stderr)


def _serve_metrics(port: int, process_id: int) -> None:
    """/metrics from Bytewax's dataflow API server, which serves the default registry with its
    own metrics; process i of a cluster listens on port + i."""
    if port:
        os.environ["BYTEWAX_DATAFLOW_API_ENABLED"] = "true"
        os.environ["BYTEWAX_DATAFLOW_API_PORT"] = str(port + process_id)


def _peer_lost(exc: BaseException) -> bool:
    """Whether Bytewax stopped because another member's connection broke (its panic)."""
    return type(exc).__name__ == "PanicException" and "thread panic" in str(exc)
