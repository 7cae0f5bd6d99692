"""The benchmark baselines: the workload they replay, and that each allocates without
overselling against a real PostgreSQL and a real Redis."""

from __future__ import annotations

import os

import psycopg
import pytest

from stockflow.ops.bench.naive_redis import run_naive_redis
from stockflow.ops.bench.rowlock import DEFAULT_DSN, run_rowlock
from stockflow.ops.bench.workload import Workload, load_workload
from stockflow.ops.generate import Scenario, write_jsonl

PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
SMOKE_LINES = 2_000


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of a running PostgreSQL: `$PG_DSN`, else the local default."""
    dsn = os.environ.get("PG_DSN", DEFAULT_DSN)
    try:
        psycopg.connect(dsn, connect_timeout=2).close()
    except Exception as exc:
        pytest.fail(f"no PostgreSQL at {dsn!r} ({exc}); start one with:\n  {PG_START}",
                    pytrace=False)
    return dsn


@pytest.fixture(scope="module")
def trace_workload(tmp_path_factory) -> Workload:
    path = tmp_path_factory.mktemp("bench") / "trace.jsonl"
    with open(path, "wb") as out:
        write_jsonl(Scenario(events=8_000, seed=7, skus=200, stores=6, malformed_rate=0.01), out)
    workload = load_workload(str(path))
    assert len(workload.lines) >= SMOKE_LINES
    return workload


# Five units of one SKU and eleven lines that want them: most lines must be turned away.
SCARCE = Workload(
    stock={("SKU-1", "DC-A"): 3, ("SKU-1", "DC-B"): 2, ("SKU-2", "DC-A"): 0},
    lines=[(f"O-{i}", "1", "SKU-1", 1) for i in range(10)]
    + [("O-big", "1", "SKU-1", 4), ("O-none", "1", "SKU-2", 1), ("O-unknown", "1", "SKU-9", 1)],
)


def test_the_workload_is_first_snapshots_and_accepted_order_lines(tmp_path):
    head = '"event_id":"e{}","ts":"2026-11-10T00:00:00Z"'
    order = ('{{"type":"order.created",' + head + ',"order_id":"{}","channel":"tmall",'
             '"lines":{},"ship_to":{{"region":"X","lat":1,"lon":1}},'
             '"fulfillment":"ship","paid":true}}')
    snapshot = ('{{"type":"stock.snapshot",' + head
                + ',"sku":"S","node":"{}","on_hand":{},"seq":{}}}')
    trace = [
        snapshot.format(1, "N1", 5, 1),
        snapshot.format(2, "N1", 9, 2),  # a later count: not the initial stock
        snapshot.format(3, "N2", 0, 1),
        order.format(4, "O1", '[{"line_id":"1","sku":"S","qty":2},'
                              '{"line_id":"2","sku":"T","qty":1}]'),
        order.format(5, "O1", '[{"line_id":"1","sku":"S","qty":2}]'),  # resent order
        order.format(4, "O9", '[{"line_id":"1","sku":"S","qty":2}]'),  # duplicate event
        order.format(6, "O2", '[{"line_id":"1","sku":"S","qty":0}]'),  # qty out of range
        order.format(7, "O3", '[{"line_id":"1","sku":"S","qty":"two"}]'),
        '{"type":"order.created","order_id":"O4","lines":[{"line_',  # truncated
        '{"type":"inventory.snapshot","event_id":"e8","ts":"2026-11-10T00:00:00Z"}',
        order.format(9, "O5", '[{"line_id":"1","sku":"S","qty":3}]'),
    ]
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(trace) + "\n")
    workload = load_workload(str(path))
    assert workload.stock == {("S", "N1"): 5, ("S", "N2"): 0}
    assert workload.lines == [("O1", "1", "S", 2), ("O1", "2", "T", 1), ("O5", "1", "S", 3)]


@pytest.mark.parametrize("clients", [1, 4])
def test_rowlock_allocates_the_trace_and_balances_its_books(pg_dsn, trace_workload, clients):
    result = run_rowlock(trace_workload, clients, pg_dsn, SMOKE_LINES)
    _check_run(result, "postgres-rowlock", clients)


@pytest.mark.parametrize("clients", [1, 4])
def test_naive_redis_allocates_the_trace_and_balances_its_books(redis_url, trace_workload,
                                                                clients):
    result = run_naive_redis(trace_workload, clients, redis_url, SMOKE_LINES)
    _check_run(result, "redis-lua", clients)


@pytest.mark.parametrize("clients", [1, 4])
def test_neither_baseline_oversells_a_scarce_sku(pg_dsn, redis_url, clients):
    for result in (run_rowlock(SCARCE, clients, pg_dsn, None),
                   run_naive_redis(SCARCE, clients, redis_url, None)):
        assert result["consistent"] is True
        # DC-A's 3 and DC-B's 2 go one unit at a time; the 4-unit line fits nowhere whole.
        assert (result["allocated"], result["rejected"]) == (5, 8), result


def test_one_client_makes_the_same_choices_in_both_baselines(pg_dsn, redis_url,
                                                             trace_workload):
    rowlock = run_rowlock(trace_workload, 1, pg_dsn, SMOKE_LINES)
    naive = run_naive_redis(trace_workload, 1, redis_url, SMOKE_LINES)
    assert (rowlock["allocated"], rowlock["rejected"]) == (naive["allocated"], naive["rejected"])


def _check_run(result: dict, system: str, clients: int) -> None:
    assert result["system"] == system and result["clients"] == clients
    assert result["consistent"] is True
    assert result["lines"] == SMOKE_LINES == result["allocated"] + result["rejected"]
    assert result["allocated"] > SMOKE_LINES // 2
    assert result["lines_per_s"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]
