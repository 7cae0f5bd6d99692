"""A cluster on two hosts (two processes on loopback, each with its own recovery directory),
fed on the producers' layout: it decides as one process does, survives one host killed, and
refuses a host that lost its recovery directory while the other's holds snapshots."""

from __future__ import annotations

import shutil
import signal
import time

from stockflow.ops.bench.kafka_runs import topic_of
from stockflow.ops.cluster import FORMATION_FAILED, cluster_ports, run_local

from .faults.judge import judge
from .invariants import audit
from .live_runs import LAYOUT, LiveRun, commands_and_statuses, generated_trace, replay_of_recorded
from .servers import unique_prefix
from .test_dataflow import read_events
from .test_live import lines_of, trace  # noqa: F401 (fixture)
from .test_live_alignment import assert_same_decisions, filled
from .hosts import Hosts, wait_all


def two_hosts(kafka_brokers, redis_url, tmp_path, lines) -> Hosts:
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics(LAYOUT)
    run.produce(lines, topic_of)  # master 1, stock 3, orders 3 partitions, interleaved
    return Hosts(run)


def test_two_hosts_decide_as_one_process(kafka_brokers, redis_url, trace, tmp_path):
    hosts = two_hosts(kafka_brokers, redis_url, tmp_path, lines_of(trace))
    hosts.drain()
    live = hosts.run.decoded()
    replayed, _ = replay_of_recorded(hosts.run)
    assert_same_decisions(live, replayed)
    assert commands_and_statuses(live) == commands_and_statuses(replayed)
    assert filled(live) == filled(replayed) > 1000
    events, _ = read_events(tmp_path / "recorded.jsonl")
    audit(events, [o for o in live if type(o).__name__ != "DeadLetter"])
    # each host holds its own recovery partition, and only that one
    assert sorted(p.name for p in hosts.dirs[0].glob("part-*.sqlite3")) == ["part-0.sqlite3"]
    assert sorted(p.name for p in hosts.dirs[1].glob("part-*.sqlite3")) == ["part-1.sqlite3"]


def test_one_host_killed_stops_the_cluster_and_both_resume(kafka_brokers, redis_url, tmp_path):
    lines = lines_of(generated_trace(tmp_path, events=12_000, seed=12, skus=200, stores=6))
    hosts = two_hosts(kafka_brokers, redis_url, tmp_path, lines)
    hosts.run.env["STOCKFLOW_KAFKA_BATCH_SIZE"] = "50"  # many small epochs: a kill mid-run
    for attempt in (1, 2):
        procs = hosts.start("--drain")
        while all(p.poll() is None for p in procs) and hosts.run.written() < 1500:
            time.sleep(0.02)
        if FORMATION_FAILED not in (procs[0].poll(), procs[1].poll()):
            break
        wait_all(procs, 10)
    assert all(p.poll() is None for p in procs), "drained before the kill"
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = procs[0].wait(timeout=30)  # one dead process stops the cluster
    stopped_s = time.monotonic() - killed
    print(f"host 0 stopped {stopped_s:.2f} s after host 1 was killed: {hosts.last_line(0)}")
    assert code == 1 and stopped_s < 10
    assert hosts.last_line(0).startswith("stockflow: error: a process of the cluster stopped")
    hosts.drain()  # both again: each resumes from the last snapshot
    figures = judge(hosts.run)
    assert figures["lines_lost"] == figures["effects_lost"] == 0, figures
    assert figures["effects_duplicated"] == figures["over_committed"] == 0, figures
    assert figures["availability_as_replay"], figures


def test_a_host_with_an_empty_recovery_directory_is_refused(kafka_brokers, redis_url, trace,
                                                            tmp_path):
    lines = lines_of(trace)
    hosts = two_hosts(kafka_brokers, redis_url, tmp_path, lines[:2000])
    hosts.drain()
    shutil.rmtree(hosts.dirs[1])  # host b's disk is lost; host a's holds snapshots
    procs = hosts.start("--drain")
    codes = wait_all(procs, 60)
    assert codes[1] == 1, (codes, hosts.log(1)[-2000:])
    said = hosts.log(1).strip().splitlines()
    refusal = [line for line in said if not line.startswith("ts=")]  # log lines aside
    assert len(refusal) == 1, said  # one line, no trace
    assert any(" event=refused reason=recovery_store " in line for line in said), said
    assert refusal[0].startswith(
        f"stockflow: error: refusing to start: the recovery store {hosts.dirs[1]} lacks "
        "partition 1 of 2, made on "), refusal[0]
    assert "--from-scratch" in refusal[0]
    assert not hosts.dirs[1].exists() or not list(hosts.dirs[1].glob("part-*"))
    # The documented way back: every directory aside, every process from scratch.
    shutil.rmtree(hosts.dirs[0])
    hosts.run.produce(lines[2000:], topic_of)
    hosts.drain("--from-scratch")
    replayed, _ = replay_of_recorded(hosts.run)
    assert commands_and_statuses(hosts.run.decoded()) == commands_and_statuses(replayed)


def test_a_third_host_joins_the_store_of_two(kafka_brokers, redis_url, trace, tmp_path):
    """Processes can be added up to the store's buckets: the newcomer holds no partition and
    Bytewax moves state to it."""
    lines = lines_of(trace)
    hosts = two_hosts(kafka_brokers, redis_url, tmp_path, lines[:3000])
    hosts.drain()
    hosts.run.produce(lines[3000:], topic_of)
    hosts.count = 3
    hosts.drain()
    assert hosts.dirs[2].is_dir() and list(hosts.dirs[2].glob("part-*")) == []
    replayed, _ = replay_of_recorded(hosts.run)
    live = hosts.run.decoded()
    assert commands_and_statuses(live) == commands_and_statuses(replayed)
    assert filled(live) == filled(replayed) > 1000


def test_cluster_ports_are_free_and_outside_the_ephemeral_range():
    ports = cluster_ports(50)
    assert len(set(ports)) == 50
    low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    assert all(p < low or p > high for p in ports)


def test_a_taken_port_is_retried_once_with_fresh_ones(kafka_brokers, redis_url, tmp_path,
                                                      monkeypatch):
    """`--processes N` on one host: a member that cannot bind its port makes the launcher
    form the cluster again on fresh ports."""
    import socket

    import stockflow.ops.cluster as cluster

    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics(LAYOUT)
    run.produce(lines_of(generated_trace(tmp_path, events=500, seed=13, skus=20, stores=2)),
                topic_of)
    for name, value in run.env.items():
        if name.startswith("STOCKFLOW_"):
            monkeypatch.setenv(name, value)
    taken = socket.socket()
    taken.bind(("127.0.0.1", cluster.cluster_ports(1)[0]))
    taken.listen()
    chosen: list[list[int]] = []
    fresh = cluster.cluster_ports

    def first_taken(n):
        ports = fresh(n)
        if not chosen:
            ports[0] = taken.getsockname()[1]  # as if another program took it meanwhile
        chosen.append(ports)
        return ports

    monkeypatch.setattr(cluster, "cluster_ports", first_taken)
    try:
        run_local(2, ["--drain"])
    finally:
        taken.close()
    assert len(chosen) == 2 and chosen[1][0] != chosen[0][0]
    assert run.written() > 0  # formed the second time, and drained

