"""The replay summary counts the duplicates the engine drops, read from the input file alone."""

from __future__ import annotations

import json

import msgspec
import pytest

from stockflow.ops import metrics
from stockflow.ops.cli import main

from .scenario import DAY, Script

ENCODE = msgspec.json.Encoder().encode


def events_with_duplicates() -> tuple[list[bytes], int]:
    """A small day with every kind of repeat; returns its lines and how many the engine drops."""
    e = Script()
    order = ENCODE(e.order("O1", [("SKU-1", 2)], paid=True))
    paid = ENCODE(e.paid("O2"))
    bad = msgspec.json.decode(ENCODE(e.order("BAD", [("SKU-1", 1), ("SKU-1", 1)])))
    bad["lines"][1]["line_id"] = "1"  # breaks a rule: a dead letter each time, never a duplicate
    bad = ENCODE(bad)
    lines = [
        ENCODE(e.node("A")), ENCODE(e.channel("web")), ENCODE(e.snapshot("SKU-1", "A", 10)),
        order,
        order,  # the same event_id again
        ENCODE(e.order("O1", [("SKU-1", 2)], paid=True)),  # resent under a new event_id
        ENCODE(e.order("O2", [("SKU-1", 1)])),
        paid,
        paid,  # the same event_id again
        bad,
        bad,
        b"{not json",
    ]
    return lines, 3


def test_the_summary_counts_the_duplicates_the_engine_drops(tmp_path, capsys):
    lines, dropped = events_with_duplicates()
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    before = metrics.DUPLICATES._value.get()
    assert main(["replay", str(events), "--out", str(tmp_path / "out"), "--summary", "--json",
                 "--metrics", str(tmp_path / "m.prom")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["duplicates"] == dropped
    assert metrics.DUPLICATES._value.get() - before == dropped  # what the engine counted
    assert summary["dead_letters"] == 3  # the rule breakers and the broken line


def test_the_printed_summary_shows_the_duplicates(tmp_path, capsys):
    lines, dropped = events_with_duplicates()
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["replay", str(events), "--out", str(tmp_path / "out"), "--summary"]) == 0
    row = [r for r in capsys.readouterr().out.splitlines() if "duplicates dropped" in r]
    assert len(row) == 1 and row[0].split()[-2] == str(dropped)


def rebalancing_trace(path) -> None:
    """North (Beijing) has 2 jackets, South (Guangzhou) 100; seven orders of 2 ship to
    Tianjin on one day, and the next day's count at South is the SKU's first event."""
    from .scenario import BEIJING, DAY, GUANGZHOU

    e = Script()
    events = [e.node("DC-N", region="North", at=BEIJING),
              e.node("DC-S", region="South", at=GUANGZHOU), e.channel("web"),
              e.snapshot("JACKET", "DC-N", 2), e.snapshot("JACKET", "DC-S", 100)]
    events += [e.order(f"T-{i}", [("JACKET", 2)], paid=True, region="Tianjin",
                       ship_to=(39.1, 117.2), ts=6 * DAY + i) for i in range(7)]
    events.append(e.snapshot("JACKET", "DC-S", 88, ts=7 * DAY))
    path.write_bytes(b"".join(ENCODE(ev) + b"\n" for ev in events))


def test_replay_rebalances_when_asked_and_the_summary_counts_transfers(tmp_path, capsys):
    rebalancing_trace(tmp_path / "events.jsonl")
    base = ["replay", str(tmp_path / "events.jsonl"), "--summary", "--json", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "off")]) == 0
    off = json.loads(capsys.readouterr().out)
    assert main(base + ["--out", str(tmp_path / "on"), "--rebalance-cover-weeks", "2",
                        "--rebalance-surplus-weeks", "4", "--rebalance-window-days", "7"]) == 0
    on = json.loads(capsys.readouterr().out)
    assert (off["transfers_requested"], on["transfers_requested"]) == (0, 1)
    assert on["transfer_units"] == 28  # two weeks of 14 a week
    # North shipped 2 units to Tianjin, South the other 12 (before the transfer was asked).
    from stockflow.state.geo import haversine_km

    from .scenario import BEIJING, GUANGZHOU

    mean = (2 * haversine_km(*BEIJING, 39.1, 117.2) + 12 * haversine_km(*GUANGZHOU, 39.1, 117.2)) / 14
    assert off["mean_distance_km"] == on["mean_distance_km"] == pytest.approx(mean)


def protected_units_sold_away(tmp_path, capsys, *flags) -> dict:
    """The summary's per-channel figures for a shop with `wos_weeks` 2 (10 units a day for
    four weeks), whose protected units a market order then asks for before the shop's next
    order runs out."""
    e = Script()
    lines = [e.node("A"), e.channel("shop", wos_weeks=2, allow_split=True),
             e.channel("market", allow_split=True), e.snapshot("K", "A", 1000, seq=1)]
    lines += [e.order(f"S{d}", [("K", 10)], channel="shop", paid=True, ts=d * DAY)
              for d in range(28)]
    lines += [e.snapshot("K", "A", 480, seq=2, ts=27 * DAY + 60),  # 200 free
              e.order("M1", [("K", 100)], channel="market", paid=True, ts=27 * DAY + 120),
              e.order("S99", [("K", 150)], channel="shop", paid=True, ts=27 * DAY + 180)]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(ENCODE(ev) for ev in lines) + b"\n")
    assert main(["replay", str(events), "--out", str(tmp_path / "out"), "--summary", "--json",
                 "--quiet", "--chunk-lines", "1", *flags]) == 0
    return json.loads(capsys.readouterr().out)["by_channel"]


def test_the_summary_counts_protected_units_sold_away_per_channel(tmp_path, capsys):
    off = protected_units_sold_away(tmp_path, capsys, "--no-wos-protection")
    # 147 protected (2 weeks of about 73.7 a week), 53 not: the market's 100 took 47 of them.
    assert off["shop"] == {"lines": 29, "allocated_lines": 28, "fill_rate": 28 / 29,
                           "wos_weeks": 2.0, "wos_run_outs": 1, "wos_sold_away": 47}
    assert off["market"]["allocated_lines"] == 1 and off["market"]["wos_weeks"] is None
    on = protected_units_sold_away(tmp_path, capsys)
    assert on["shop"]["wos_sold_away"] == 0 and on["shop"]["allocated_lines"] == 29
    assert on["market"]["allocated_lines"] == 0  # refused: it would eat into the protection


def test_the_summary_counts_slow_movers_flagged(tmp_path, capsys):
    """K-SLOW sells 2 a day for 30 days, then 1 every other day; K-STEADY 2 a day all along:
    only the first is flagged, once, when a count on day 61 has it judged."""
    e = Script()
    lines = [ENCODE(e.node("A")), ENCODE(e.channel("web")),
             ENCODE(e.snapshot("K-SLOW", "A", 1000, seq=1)),
             ENCODE(e.snapshot("K-STEADY", "A", 1000, seq=1))]
    for day in range(60):
        slow = 2 if day < 30 else day % 2
        for sku, qty in (("K-SLOW", slow), ("K-STEADY", 2)):
            if qty:
                lines.append(ENCODE(e.order(f"{sku}-{day}", [(sku, qty)], paid=True,
                                            ts=day * DAY)))
    for sku in ("K-SLOW", "K-STEADY"):
        lines.append(ENCODE(e.snapshot(sku, "A", 900, seq=2, ts=61 * DAY)))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["replay", str(events), "--out", str(tmp_path / "out"), "--summary",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["slow_mover_alerts"], summary["slow_mover_skus"]) == (1, 1)
    alerts = [json.loads(line) for line in open(tmp_path / "out" / "alerts.jsonl")]
    assert [a["sku"] for a in alerts if a["kind"] == "slow_mover"] == ["K-SLOW"]


def test_oversold_is_one_figure_for_the_summary_and_the_metric(tmp_path, capsys):
    """A paid line refused for lack of stock and then cancelled was still oversold; a paid line
    on a channel the catalog does not know was refused for configuration, not oversold. The
    summary and `stockflow_oversold_lines_total` over the oversell reasons say the same."""
    from stockflow.ops.oversell import OVERSELL_REASONS

    e = Script()
    lines = [ENCODE(ev) for ev in (
        e.node("A"), e.channel("web"), e.snapshot("SKU-1", "A", 3),
        e.order("O1", [("SKU-1", 5)], paid=True),  # no_stock
        e.cancelled("O1"),  # after the refusal
        e.order("O2", [("SKU-1", 4)], paid=True),  # no_stock, stays rejected
        e.order("O3", [("SKU-1", 1)], channel="nowhere", paid=True),  # unknown_channel
        e.order("O5", [("SKU-1", 1)], channel="nowhere", paid=True),  # unknown_channel
        e.order("O4", [("SKU-1", 2)], paid=True),  # allocated
    )]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")

    def oversold_metric() -> float:
        return sum(child._value.get() for (channel, reason), child
                   in metrics.OVERSOLD._metrics.items() if reason in OVERSELL_REASONS)

    before = oversold_metric()
    assert main(["replay", str(events), "--out", str(tmp_path / "out"), "--json",
                 "--metrics", str(tmp_path / "m.prom")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["oversold_paid_lines"] == 2
    assert oversold_metric() - before == 2
