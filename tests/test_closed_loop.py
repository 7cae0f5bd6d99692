"""What-if's closed loop: the engine's commands answered by the simulated supply side, the
same for a seed, written out so that a plain replay of the file decides the same, and the
promise kept throughout."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from stockflow.connectors.codec import decode_lines
from stockflow.ops.cli import main
from stockflow.ops.replay import replay
from stockflow.ops.stock_on_hand import StockOnHand
from stockflow.ops.summary import read_outputs
from stockflow.ops.whatif.closed_loop import close_loop
from stockflow.state.config import EngineConfig
from stockflow.state.events import ClockTick, Malformed, PolicyUpserted
from stockflow.state.outputs import STREAM_OF, AvailabilityChanged, DeadLetter
from stockflow.state.supply_side import ByKind, Delay, SupplySideSettings

from .invariants import audit
from .scenario import Script
from .test_promise import NODES, SKUS, T0, histories

ENCODE = msgspec.json.Encoder().encode
SECONDS = SupplySideSettings(  # delays of seconds: answers land within a short history
    purchase_lead=ByKind(default=Delay(mean_s=20)), pick=ByKind(default=Delay(mean_s=5)),
    transfer_lead=ByKind(default=Delay(mean_s=10)))


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("closed-loop") / "trace.jsonl"
    assert main(["generate", "--events", "6000", "--seed", "11", "--out", str(path), "-q"]) == 0
    return path


def loop(trace: Path, out: Path, supply="recorded", settings=SupplySideSettings(),
         config=EngineConfig()) -> list:
    outputs: list = []
    with open(out, "wb") as f:
        close_loop(str(trace), f, config, settings, supply, outputs)
    return outputs


def test_a_purchase_is_announced_then_received_after_the_lead_time(tmp_path):
    e = Script()
    events = [e.node("SH"), e.channel("web"), e.policy("K", "SH", safety_stock=0,
                                                        reorder_point=3, order_up_to=10),
              e.snapshot("K", "SH", 4), e.order("O1", [("K", 2)], paid=True),
              ClockTick(event_id="end", ts=e.now + timedelta(days=9))]
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(b"".join(ENCODE(ev) + b"\n" for ev in events))
    settings = SupplySideSettings(purchase_lead=ByKind(default=Delay(mean_s=5 * 86400,
                                                                     spread=0)))
    loop(trace, tmp_path / "loop.jsonl", settings=settings)
    applied = decode_lines((tmp_path / "loop.jsonl").read_bytes().splitlines(), "loop", 1)
    kinds = [type(ev).__name__ for ev in applied]
    # the order leaves 2 < 3: 8 units asked for, announced at once, received 5 days on;
    # the allocation ships after the pick delay
    inbound, received, shipped = (applied[kinds.index(k)] for k in (
        "SupplyInbound", "SupplyReceived", "ShipmentConfirmed"))
    assert (inbound.qty, inbound.kind, inbound.ts) == (8, "purchase_order", events[4].ts)
    assert received.ts - inbound.ts == timedelta(days=5) and received.qty == 8
    assert timedelta(hours=3) <= shipped.ts - events[4].ts <= timedelta(hours=5)
    assert kinds.index("SupplyInbound") == kinds.index("OrderCreated") + 1
    assert kinds[-1] == "ClockTick"  # answers sent in event-time order, before what follows


def test_a_seed_gives_the_same_run_another_seed_other_delays(trace, tmp_path):
    loop(trace, tmp_path / "a.jsonl")
    loop(trace, tmp_path / "b.jsonl")
    loop(trace, tmp_path / "c.jsonl", settings=SupplySideSettings(seed=2))
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.jsonl", "b.jsonl", "c.jsonl"))
    assert a == b
    assert a != c
    assert b'"type":"supply.inbound"' in a and b'"type":"shipment.confirmed"' in a


@pytest.mark.parametrize("supply", ["recorded", "simulated"])
def test_a_replay_of_the_written_trace_decides_the_same(trace, tmp_path, supply):
    written = tmp_path / "loop.jsonl"
    outputs = loop(trace, written, supply)
    replay(str(written), str(tmp_path / "out"), EngineConfig(), show_progress=False)
    by_stream: dict[str, list[bytes]] = {}
    for o in outputs:
        if type(o) not in (AvailabilityChanged, DeadLetter):  # batching coalesces these
            by_stream.setdefault(STREAM_OF[type(o)], []).append(ENCODE(o))
    assert by_stream["replenishment"] and by_stream["dispatch"]
    for stream, lines in by_stream.items():
        replayed = [ENCODE(o) for o in read_outputs(tmp_path / "out", stream)]
        assert sorted(replayed) == sorted(lines), stream
    # availability is published when it changes: by batch in the replay, so compare what
    # each (sku, channel) stands at in the end (never published is 0)
    last = {(o.sku, o.channel): (o.available, o.max_line_qty)
            for o in outputs if type(o) is AvailabilityChanged}
    replayed = {(o.sku, o.channel): (o.available, o.max_line_qty)
                for o in read_outputs(tmp_path / "out", "availability")}
    assert {k: v for k, v in replayed.items() if v != (0, 0)} == \
        {k: v for k, v in last.items() if v != (0, 0)}


def test_simulated_supply_leaves_out_the_traces_receipts(trace, tmp_path):
    loop(trace, tmp_path / "sim.jsonl", "simulated")
    loop(trace, tmp_path / "rec.jsonl", "recorded")
    recorded_ids = Counter()
    for name in ("sim.jsonl", "rec.jsonl"):
        for ev in decode_lines((tmp_path / name).read_bytes().splitlines(), name, 1):
            if type(ev).__name__ in ("SupplyInbound", "SupplyReceived") \
                    and not ev.event_id.startswith("sim-"):
                recorded_ids[name] += 1
    assert recorded_ids["sim.jsonl"] == 0 and recorded_ids["rec.jsonl"] > 0


CLOSED = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CLOSED
@given(histories())
def test_the_promise_holds_in_closed_loop(events):
    # reorder points everywhere, so the loop buys and transfers
    policies = [PolicyUpserted(event_id=f"p-{s}-{n}", ts=T0, sku=s, node=n, safety_stock=0,
                               reorder_point=3, order_up_to=6) for s in SKUS for n in NODES]
    trace = io.BytesIO()
    trace.write(b"".join(ENCODE(ev) + b"\n" for ev in events[:6] + policies + events[6:]))
    path = Path(f"/tmp/closed-loop-{id(events)}.jsonl")
    path.write_bytes(trace.getvalue())
    try:
        written = io.BytesIO()
        outputs: list = []
        close_loop(str(path), written, EngineConfig(buckets=3), SECONDS, "recorded", outputs)
    finally:
        path.unlink()
    applied = [ev for ev in decode_lines(written.getvalue().splitlines(), "loop", 1)
               if type(ev) is not Malformed]
    auditor = audit(applied, outputs)
    assert auditor.events_checked == len({e.event_id for e in applied})


def test_stock_figures_by_hand():
    e = Script()
    stock = StockOnHand()
    t0 = T0
    hour = timedelta(hours=1)
    for ev in [
        e.snapshot("K", "SH", 10, seq=1, ts=t0),  # 10 for the first hour
        e.adjust("K", "SH", -4, ts=t0 + hour),  # 6 for the second
        e.snapshot("K", "SH", 50, seq=0, ts=t0 + hour),  # stale: ignored
        e.shipped("O1", "K", "SH", 8, ts=t0 + 2 * hour),  # a debt of 2: none, 1 hour
        e.received("P1", "K", "SH", 12, ts=t0 + 3 * hour),  # 10 for the last hour
        ClockTick(event_id="end", ts=t0 + 4 * hour),
    ]:
        stock.apply(ev)
    assert stock.mean_units == (10 + 6 + 0 + 10) / 4
    assert stock.turns == 8 / 6.5 * 365 * 24 / 4


def test_the_summary_counts_stockouts_and_purchases_in_closed_loop(tmp_path):
    e = Script()
    events = [e.node("SH"), e.channel("web", backorder=True),
              e.policy("K", "SH", safety_stock=0, reorder_point=2, order_up_to=5),
              e.snapshot("K", "SH", 3), e.order("O1", [("K", 2)], paid=True),  # 1 left: buys 4
              e.order("O2", [("K", 3)], paid=True),  # 1 on hand: backordered
              ClockTick(event_id="end", ts=e.now + timedelta(days=8))]
    (tmp_path / "trace.jsonl").write_bytes(b"".join(ENCODE(ev) + b"\n" for ev in events))
    out = tmp_path / "figures.json"
    assert main(["whatif", str(tmp_path / "trace.jsonl"), "--closed-loop", "--json", str(out),
                 "-q", "--policy", "ops/whatif/policies/as-recorded.toml"]) == 0
    figures = json.loads(out.read_text())["columns"][1]["figures"]
    assert figures["units_purchased"] == 4
    assert figures["stockout_lines"] == 1  # O2, backordered until the purchase came
    assert figures["fill_rate"] == 1.0


def test_supply_without_closed_loop_is_one_readable_line(tmp_path, capsys):
    assert main(["whatif", "t.jsonl", "--supply", "simulated", "--policy", "p.toml"]) != 0
    assert "--supply needs --closed-loop" in capsys.readouterr().err


def test_explain_reads_the_written_trace(trace, tmp_path, capsys):
    written = tmp_path / "loop.jsonl"
    outputs = loop(trace, written)
    order_id = next(o.order_id for o in outputs if type(o).__name__ == "DispatchAllocate")
    capsys.readouterr()
    assert main(["explain", order_id, "--events", str(written)]) == 0
    assert order_id in capsys.readouterr().out
