"""The read model and the reservation API on a real 3-primary Redis Cluster (started by the
test session), and the one-line refusals of a client of the wrong kind."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from stockflow.connectors.read_model_reader import ReadModelReader
from stockflow.connectors.redis_connect import RedisRefused, connect
from stockflow.connectors.redis_keys import GROUPS, Keys, group_tags
from stockflow.connectors.redis_store import ReadModelStore
from stockflow.connectors.reservations import ReservationRefused, Reservations
from stockflow.ops.metrics import ReservationCollector

from .live_runs import LiveRun
from .servers import unique_prefix
from .test_dataflow import final_availability, nonzero
from .test_live import drained, replayed, trace  # noqa: F401 (module fixtures)
from .live_engine import setup_engine, try_reserve
from .test_reservations import race


@pytest.fixture(scope="module")
def cluster(redis_cluster):
    return connect(redis_cluster.url, cluster=True, timeout_s=5)


def primaries(cluster) -> dict[str, redis.Redis]:
    return {node.name: cluster.get_redis_connection(node) for node in cluster.get_primaries()}


# -- the key layout ------------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=40).filter(lambda s: "{" not in s and "}" not in s))
def test_every_key_of_one_call_lies_in_one_slot(sku):
    keys = Keys("sf", cluster=True)
    for call in (keys.reserve, keys.release, keys.begin, keys.publish):
        assert len({key_slot(k.encode()) for k in call(sku)}) == 1, call.__name__
    assert key_slot(keys.hold(sku, "O1/1").encode()) == key_slot(keys.avail(sku).encode())
    assert keys.heartbeat_of(sku) in keys.heartbeats_of([sku, "other"])


def test_slot_groups_spread_evenly_over_the_slots():
    width = REDIS_CLUSTER_HASH_SLOTS // GROUPS
    assert [key_slot(t.encode()) // width for t in group_tags()] == list(range(GROUPS))
    one = Keys("sf")  # one Redis: the layout it always had
    assert one.reserve("S1")[-3:] == ["sf:heartbeat", "sf:stats", "sf:ckdue"]
    assert one.avail("S1") == "sf:{S1}:avail"


# -- reservations ------------------------------------------------------------------------------


def test_64_clients_race_for_the_last_10_units_on_a_cluster(cluster):
    engine, api = setup_engine(cluster, 10, "RACE")
    assert api.available("RACE", "web") == 10
    assert len(race(api, "RACE", "web", clients=64)) == 10
    assert try_reserve(api, "RACE", "mkt", 1) is None


def test_skus_land_on_every_primary_and_reserve_there(cluster):
    engine, api = setup_engine(cluster, 5, "S0")
    e = engine.ev
    skus = [f"S{i}" for i in range(40)]
    engine.feed(*(e.snapshot(sku, "A", 5) for sku in skus[1:]))
    on_node: dict[str, list[str]] = {}
    for sku in skus:
        on_node.setdefault(cluster.get_node_from_key(api.keys.avail(sku)).name, []).append(sku)
    assert set(on_node) == set(primaries(cluster))  # all three hold SKUs
    for name, node in primaries(cluster).items():
        sku = on_node[name][0]
        assert node.hget(api.keys.avail(sku), "web") == b"5"  # written there, not elsewhere
        assert try_reserve(api, sku, "web", 5) is not None
        assert try_reserve(api, sku, "web", 1) is None
    # metrics sum the groups' counters: 3 granted and 3 short, wherever they were counted
    (family,) = ReservationCollector(cluster, api.keys.stats).collect()
    counts = {s.labels["result"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert (counts["granted"], counts["short"]) == (3, 3)


def test_a_reservation_is_one_round_trip_without_command_getkeys(cluster):
    engine, api = setup_engine(cluster, 50, "RT")
    for node in primaries(cluster).values():
        node.config_resetstat()
    for i in range(10):
        api.reserve("RT", "web", 1, 60_000, f"h{i}")
    stats = [node.info("commandstats") for node in primaries(cluster).values()]
    assert sum(s.get("cmdstat_fcall", {}).get("calls", 0) for s in stats) == 10
    assert not any("cmdstat_command|getkeys" in s for s in stats)


def test_reserve_refuses_when_its_groups_heartbeat_is_stale(cluster):
    engine, api = setup_engine(cluster, 5, "HB")
    assert try_reserve(api, "HB", "web", 1) is not None
    cluster.set(api.keys.heartbeat_of("HB"), 0)  # this SKU's group goes stale
    with pytest.raises(ReservationRefused) as refused:
        api.reserve("HB", "web", 1, 60_000, "late")
    assert refused.value.code == "STALE"
    engine.store.beat()  # every group's heartbeat again
    assert try_reserve(api, "HB", "web", 1) is not None


def test_functions_missing_on_one_primary_are_loaded_on_every_primary(cluster):
    engine, api = setup_engine(cluster, 5, "FN")
    node = cluster.get_node_from_key(api.keys.avail("FN"))
    cluster.get_redis_connection(node).function_flush()
    engine.feed(engine.ev.adjust("FN", "A", -1))  # its publish meets "Function not found"
    assert engine.store.losses == 1
    assert all(n.function_list() for n in primaries(cluster).values())
    engine.tick()
    engine.store.beat()
    assert api.available("FN", "web") == 4
    assert try_reserve(api, "FN", "web", 4) is not None


# -- the wrong kind of client: one line, not an outage -----------------------------------------


def test_a_plain_client_against_a_cluster_node_is_refused_not_an_outage(redis_cluster, cluster):
    plain = redis.Redis.from_url(redis_cluster.url, socket_timeout=2)
    while True:  # a store whose mark lives on another node than the one the URL names
        store = ReadModelStore(plain, f"t{uuid.uuid4().hex[:8]}")
        if cluster.get_node_from_key(store._marks[0]).port != redis_cluster.ports[0]:
            break
    with pytest.raises(RedisRefused, match=r"MOVED .*set \[redis\] cluster = true"):
        store.beat()
    assert store.outages == 0
    with pytest.raises(RedisRefused, match="is a Redis Cluster node"):
        connect(redis_cluster.url, cluster=False)


def stockflow(*args, **env) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", **{f"STOCKFLOW_{k.upper()}": v for k, v in env.items()}}
    return subprocess.run([sys.executable, "-m", "stockflow.ops.cli", *args], env=environ,
                          capture_output=True, text=True, timeout=60)


def test_redis_install_loads_the_functions_on_every_primary(redis_cluster, cluster):
    cluster.function_flush()
    assert not any(n.function_list() for n in primaries(cluster).values())
    done = stockflow("redis", "install", redis_url=redis_cluster.url, redis_cluster="true")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("reservation API installed in 3 primaries (")
    for name, node in primaries(cluster).items():
        assert name in done.stdout
        [library] = node.function_list()  # name, value, name, value...
        assert dict(zip(library[::2], library[1::2]))[b"library_name"] == b"stockflow"


def test_cluster_setting_against_the_wrong_server_is_one_line(redis_cluster, redis_url):
    done = stockflow("redis", "install", redis_url=redis_url, redis_cluster="true")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"stockflow: error: Redis at {redis_url} is not a Redis Cluster: set [redis] cluster "
        "= false (STOCKFLOW_REDIS_CLUSTER=false)"]
    done = stockflow("redis", "install", redis_url=redis_cluster.url, redis_cluster="false")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"stockflow: error: Redis at {redis_cluster.url} is a Redis Cluster node: set [redis] "
        "cluster = true (STOCKFLOW_REDIS_CLUSTER=true)"]


def test_stockflow_run_against_the_wrong_kind_is_one_line(kafka_brokers, redis_cluster,
                                                          redis_url, tmp_path):
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics({})
    for url, cluster, says in [(redis_url, "true", "is not a Redis Cluster"),
                               (redis_cluster.url, "false", "is a Redis Cluster node")]:
        run.env.update(STOCKFLOW_REDIS_URL=url, STOCKFLOW_REDIS_CLUSTER=cluster)
        assert run.start().wait(timeout=60) == 1
        lines = run.log().strip().splitlines()
        assert all(ln.startswith("ts=") for ln in lines[:-1])  # the engine's own log lines...
        line = lines[-1]  # ...then one error line, no traceback
        assert line.startswith(f"stockflow: error: Redis at {url} {says}: set [redis] cluster")


# -- live mode end to end ----------------------------------------------------------------------


def test_live_mode_on_a_cluster_answers_reservations(kafka_brokers, redis_cluster, cluster,
                                                     trace, replayed, tmp_path,  # noqa: F811
                                                     monkeypatch):
    monkeypatch.setenv("STOCKFLOW_REDIS_CLUSTER", "true")
    monkeypatch.setenv("STOCKFLOW_REDIS_HEARTBEAT_STALE_S", "120")  # fresh after the drain
    run = drained(kafka_brokers, redis_cluster.url, trace, tmp_path)
    api = Reservations(cluster, run.prefix.rstrip("."))
    expected = nonzero(final_availability(replayed))
    assert expected
    for (sku, channel), available in expected.items():
        assert api.available(sku, channel) == available, (sku, channel)
    nodes = {cluster.get_node_from_key(api.keys.avail(sku)).name for sku, _ in expected}
    assert nodes == set(primaries(cluster))
    (sku, channel), available = max(expected.items(), key=lambda kv: kv[1])
    one_line = api.max_line_qty(sku, channel)
    assert one_line > 0
    assert api.reserve(sku, channel, one_line, 60_000, "cart-1").hold_id == "cart-1"
    with pytest.raises(ReservationRefused) as refused:
        api.reserve(sku, channel, available, 60_000, "cart-2")
    assert refused.value.code in ("SHORT", "LINE")
    # the operators' reader (inspect, the HTTP API) finds the same figures on the cluster
    reader = ReadModelReader(cluster, run.prefix.rstrip("."), stale_after_s=120)
    report = reader.sku(sku)
    assert report.available[channel] == available and report.positions
    assert 0 <= reader.heartbeat_age_ms() < 120_000


# -- one primary down, then back empty (last: it restarts a node of the session's cluster) -----


def test_a_primary_down_is_an_outage_and_back_empty_is_rebuilt(redis_cluster, cluster):
    engine, api = setup_engine(cluster, 5, "GONE")
    node = cluster.get_node_from_key(api.keys.avail("GONE"))
    redis_cluster.kill(node.port)
    out = engine.feed(engine.ev.order("O1", [("GONE", 1)], paid=True))
    assert any(b"allocate/O1" in line for _, lines in out for line in lines)  # it goes on
    assert engine.store.outages >= 1  # counted as an outage, not refused
    redis_cluster.start(node.port)  # no functions, no read model, no marks on that node
    assert cluster.get_redis_connection(node).function_list() == []
    deadline = time.monotonic() + 20
    while engine.store.losses == 0:  # the first beats may meet the dropped connections
        assert time.monotonic() < deadline, "the store never noticed the empty primary"
        engine.store._down_until = 0.0
        engine.store.beat()
    assert all(n.function_list() for n in primaries(cluster).values())
    engine.store.beat()  # its marks are back, but the read model is not yet whole
    with pytest.raises(ReservationRefused) as refused:
        api.reserve("GONE", "web", 1, 60_000, "too-early")
    assert refused.value.code == "STALE"
    engine.tick()  # every bucket rewrites its whole read model...
    engine.store.beat()  # ...and only then do the heartbeats say so
    assert api.available("GONE", "web") == 4
    assert try_reserve(api, "GONE", "web", 4) is not None
