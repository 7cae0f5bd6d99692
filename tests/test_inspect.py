"""`stockflow inspect`: one SKU's position per node and availability per channel, from a
replay of a trace (the pure engine) and from the read model an engine wrote to Redis; both
must show the figures the trace implies."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.connectors.read_model_reader import ReadModelReader
from stockflow.connectors.redis_store import ReadModelStore
from stockflow.connectors.trace_file import read_events
from stockflow.ops.cli import main
from stockflow.state.book import SkuBook
from stockflow.state.engine import Engine
from stockflow.state.node_position import node_positions
from stockflow.state.quarantine import Quarantine
from stockflow.state.read_model import views

from . import read_side_trace as trace

CLI = [sys.executable, "-m", "stockflow.ops.cli"]


@pytest.fixture
def trace_file(tmp_path):
    path = tmp_path / "trace.jsonl"
    trace.write(path)
    return path


def inspect_json(capsys, *args: str) -> dict:
    assert main(["inspect", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def expected(node: str | None = None) -> dict:
    return {"sku": trace.SKU,
            "positions": [p for n, p in sorted(trace.POSITIONS.items()) if node in (None, n)],
            "channels": trace.CHANNELS, "checkout_pending": 0}


def test_inspect_a_replayed_trace_shows_what_its_events_imply(trace_file, capsys):
    assert inspect_json(capsys, trace.SKU, "--events", str(trace_file)) == expected()
    assert inspect_json(capsys, trace.SKU, "--events", str(trace_file), "--node", "DC-SH") == \
        expected("DC-SH")


def test_inspect_prints_a_table_by_default(trace_file, capsys):
    assert main(["inspect", trace.SKU, "--events", str(trace_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"SKU {trace.SKU}"
    assert out[1].split() == ["node", "on", "hand", "inbound", "due", "held", "allocated",
                              "transfer", "out", "safety", "kept", "out", "now", "ATP"]
    assert out[2].split() == ["DC-GZ", "4", "0", "0", "1", "0", "0", "0", "0", "3", "3"]
    assert out[3].split() == ["DC-SH", "10", "25", "5", "0", "3", "0", "2", "0", "7", "10"]
    assert ["DC-SH", "in_transit", "5", "2026-11-11T08:00:00Z"] in [l.split() for l in out]
    assert ["web", "13", "10"] in [l.split() for l in out]


def test_an_unknown_sku_or_node_is_one_line(trace_file):
    for args, said in [
        (["NOPE"], f"stockflow: error: unknown SKU 'NOPE': no event of {trace_file} names it"),
        ([trace.SKU, "--node", "DC-X"], f"stockflow: error: SKU '{trace.SKU}' has no position "
                                        "at node 'DC-X' (nodes: DC-GZ, DC-SH)"),
    ]:
        done = subprocess.run([*CLI, "inspect", *args, "--events", str(trace_file)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stderr.splitlines() == [said] and done.stdout == ""


def published(redis_url: str, path) -> str:
    """The trace through the pure engine, its read model written to Redis as a live engine
    writes it; the key prefix used."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    engine = Engine()
    store = ReadModelStore(redis.Redis.from_url(redis_url), prefix)
    store.start()
    for events in read_events(path, chunk_lines=4):  # several batches, as live would
        engine.process(events)
        for ledger in engine.ledgers.values():
            assert store.write(views(ledger, []))
    return prefix


def test_inspect_reads_the_position_a_running_engine_publishes(redis_url, trace_file, capsys,
                                                               monkeypatch):
    prefix = published(redis_url, trace_file)
    monkeypatch.setenv("STOCKFLOW_REDIS_URL", redis_url)
    monkeypatch.setenv("STOCKFLOW_REDIS_PREFIX", prefix)
    assert inspect_json(capsys, trace.SKU) == expected()
    assert inspect_json(capsys, trace.SKU, "--node", "DC-GZ") == expected("DC-GZ")
    assert main(["inspect", "NOPE"]) == 1
    assert capsys.readouterr().err == (
        f"stockflow: error: unknown SKU 'NOPE': the engine has published nothing for it in "
        f"{redis_url} (prefix '{prefix}')\n")


def test_the_position_is_one_compact_hash_field_per_node(redis_url, trace_file):
    prefix = published(redis_url, trace_file)
    client = redis.Redis.from_url(redis_url)
    fields = client.hgetall(f"{prefix}:{{{trace.SKU}}}:pos")  # the SKU's hash tag
    assert sorted(fields) == [b"DC-GZ", b"DC-SH"]
    assert all(len(blob) < 80 for blob in fields.values()), fields
    report = ReadModelReader(client, prefix).sku(trace.SKU)
    assert report.positions["DC-SH"].atp == 10 and report.positions["DC-GZ"].held == 1


def test_inspect_cannot_reach_redis_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("STOCKFLOW_REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["inspect", trace.SKU]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stockflow: error: cannot read the read model at redis://127.0.0.1:1/0")
    assert err.count("\n") == 1


# -- the position's figures always add up --------------------------------------------------

KINDS = st.sampled_from(["in_transit", "production", "purchase_order"])
OPS = st.lists(st.one_of(
    st.tuples(st.just("inbound"), st.sampled_from(["A", "B", "C", "D"]), st.integers(0, 30),
              st.integers(0, 100), KINDS),
    st.tuples(st.just("receive"), st.sampled_from(["A", "B", "C", "D"]), st.integers(1, 30)),
    st.tuples(st.just("advance"), st.integers(0, 100)),
    st.tuples(st.just("counts"), st.integers(-5, 40), st.integers(0, 10), st.integers(0, 10),
              st.integers(0, 5), st.integers(0, 6)),
    st.tuples(st.just("quarantine"), st.integers(0, 8)),
), max_size=30)


@settings(max_examples=300)
@given(OPS)
def test_a_node_position_adds_up_to_its_atp(ops):
    book = SkuBook()
    pos = book.position("N")
    kinds = {}
    for op in ops:
        if op[0] == "inbound":
            _, sid, qty, eta, kind = op
            pos.set_inbound(sid, qty, eta, kind)
            kinds[sid] = kind
        elif op[0] == "receive":
            pos.receive_inbound(op[1], op[2])
        elif op[0] == "advance":
            pos.advance(op[1])
        elif op[0] == "counts":
            _, pos.on_hand, pos.held, pos.allocated, pos.safety_stock, pos.transfer_out = op
        else:
            book.lift("N")
            if op[1]:
                book.quarantine("N", Quarantine("e", 0, 0, op[1]))
    shown = node_positions(book)["N"]
    entries = pos.inbound.entries if pos.inbound is not None else {}
    assert sum(i.units for i in shown.inbound.values()) == pos.inbound_qty
    for kind, of_kind in shown.inbound.items():
        mine = [e for e in entries.values() if e.kind == kind]
        assert of_kind.units == sum(e.qty for e in mine)
        assert of_kind.earliest_eta_ms == min(e.eta_ms for e in mine)
    assert shown.atp == (shown.on_hand + shown.inbound_due - shown.held - shown.allocated
                         - shown.transfer_out - shown.safety_stock - shown.kept_out)
    assert shown.now == (shown.on_hand - shown.held - shown.allocated - shown.transfer_out
                         - shown.kept_out)
    until = pos.inbound.until if pos.inbound is not None else 0
    assert shown.inbound_due == sum(e.qty for e in entries.values() if e.eta_ms <= until)
