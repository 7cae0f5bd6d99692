"""WOS protection (state/wos.py): a channel with `wos_weeks` keeps that many weeks of its own
demand from the other channels, shares what it would not sell before its next supply, and
protects less as its demand falls."""

from __future__ import annotations

from math import floor

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from stockflow.ops.cli import main
from stockflow.state.config import EngineConfig
from stockflow.state.events import ChannelUpserted
from stockflow.state.explain import Explainer
from stockflow.state.ledger import Ledger
from stockflow.state.wos import WEEK_MS, rate_at

from .invariants import audit
from .scenario import (
    DAY,
    Script,
    Sim,
    alerts,
    availability,
    max_lines,
    older_snapshot,
    statuses,
)
from .test_promise import (
    PROPERTY,
    crash_and_restore_resumes_exactly,
    histories,
    max_line_qty_is_what_one_line_can_get,
    run,
)

FREE = 200  # units on hand beyond what the shop's own orders hold


def steady_shop(protect: bool = True) -> Sim:
    """A shop with `wos_weeks` 2 that ordered 10 units a day for four weeks (all allocated),
    a market without protection, both on node A, then a count that leaves 200 units free."""
    sim = Sim(wos_protection=protect)
    e = sim.ev
    sim.feed(e.node("A"), e.channel("shop", wos_weeks=2, allow_split=True),
             e.channel("market", allow_split=True), e.snapshot("K", "A", 10_000, seq=1))
    for day in range(28):
        sim.feed(e.order(f"S{day}", [("K", 10)], channel="shop", paid=True, ts=day * DAY))
    sim.feed(e.snapshot("K", "A", 280 + FREE, seq=2, ts=27 * DAY + 60))
    return sim


def day_start_ms(sim: Sim, clock_s: float) -> int:
    """Protection is worked out at the start of the clock's day (event time)."""
    return int(sim.ev.at(clock_s - clock_s % DAY).timestamp() * 1000)


def protected_now(sim: Sim, clock_s: float) -> int:
    record = sim.book("K").wos["shop"]
    return floor(2 * rate_at(record, day_start_ms(sim, clock_s)) + 1e-9)


def test_steady_demand_protects_two_weeks_of_it_from_the_other_channels():
    sim = steady_shop()
    rate = sim.book("K").wos["shop"].rate
    assert 65 < rate < 80  # about 70 a week: 10 a day
    protected = protected_now(sim, 27 * DAY + 60)
    assert protected == floor(2 * rate)
    assert sim.book("K").published == {"shop": FREE, "market": FREE - protected}


def test_an_order_that_would_eat_protected_units_is_refused_the_rest_is_sold():
    sim = steady_shop()
    now = 27 * DAY + 120
    protected = protected_now(sim, now)
    out = sim.feed(sim.ev.order("M1", [("K", FREE - protected + 1)], channel="market",
                                paid=True, ts=now))
    assert statuses(out) == [("M1", "1", "rejected", None, FREE - protected + 1)]
    assert out[0].reason == "no_stock"
    out = sim.feed(sim.ev.order("M2", [("K", FREE - protected)], channel="market", paid=True,
                                ts=now))
    assert statuses(out) == [("M2", "1", "allocated", "A", FREE - protected)]
    assert availability(out)[("K", "market")] == 0
    # The shop itself sells from everything: the protected units are its own.
    out = sim.feed(sim.ev.order("S99", [("K", protected)], channel="shop", paid=True, ts=now))
    assert statuses(out) == [("S99", "1", "allocated", "A", protected)]


def test_when_the_shops_demand_drops_its_protection_shrinks_and_the_market_may_take_it():
    sim = steady_shop()
    before = protected_now(sim, 27 * DAY + 60)
    later = 27 * DAY + 21 * DAY  # three weeks without a shop order: the rate falls by e^3
    after = protected_now(sim, later)
    assert after < before / 10
    out = sim.feed(sim.ev.order("M1", [("K", FREE - after)], channel="market", paid=True,
                                ts=later))
    assert statuses(out) == [("M1", "1", "allocated", "A", FREE - after)]


def test_units_beyond_what_sells_before_the_next_supply_are_shared():
    sim = steady_shop()
    now = 27 * DAY + 120
    full = protected_now(sim, now)
    # An inbound counted as ATP from 3 days before its ETA (the engine's horizon): due 5
    # days from now, it joins the pool in 2 days, so only 2 days of demand are kept back
    # (counted from the start of today, 120 s ago).
    sim.feed(sim.ev.inbound("PO-1", "K", "A", 500, eta_s=5 * DAY, ts=now))
    record = sim.book("K").wos["shop"]
    two_days = floor(rate_at(record, day_start_ms(sim, now)) * (2 * DAY + 120) * 1000 / WEEK_MS
                     + 1e-9)
    assert two_days < full
    assert sim.book("K").published["market"] == FREE - two_days


def test_protection_never_lowers_what_the_protecting_channel_sees():
    sim = steady_shop()
    assert sim.book("K").published["shop"] == FREE
    assert max_lines(sim.feed(sim.ev.adjust("K", "A", 1, ts=27 * DAY + 60)))[("K", "shop")] \
        == FREE + 1


def test_explain_shows_the_units_protected_for_other_channels():
    sim = steady_shop()
    now = 27 * DAY + 120
    protected = protected_now(sim, now)
    explainer = Explainer("M1")
    for ledger in sim.engine.ledgers.values():
        ledger.explain = explainer
    sim.feed(sim.ev.order("M1", [("K", FREE)], channel="market", paid=True, ts=now))
    (sourcing,) = explainer.sourcings
    (node,) = [v for v in sourcing.nodes if v.node == "A"]
    assert (node.protected, node.atp, sourcing.unfilled) == (protected, FREE - protected,
                                                             "no_stock")


def test_without_protection_the_units_sold_away_are_counted_when_the_shop_runs_out():
    sim = steady_shop(protect=False)
    now = 27 * DAY + 120
    protected = protected_now(sim, now)
    out = sim.feed(sim.ev.order("M1", [("K", FREE)], channel="market", paid=True, ts=now))
    assert statuses(out) == [("M1", "1", "allocated", "A", FREE)]
    assert sim.book("K").wos["shop"].sold_away == protected
    out = sim.feed(sim.ev.order("S99", [("K", 10)], channel="shop", paid=True, ts=now))
    (said,) = alerts(out, "wos_sold_away")
    assert (said.channel, said.detail.split()[0]) == ("shop", str(protected))
    assert sim.book("K").wos["shop"].sold_away == 0  # said once per run-out


def test_the_same_story_with_protection_on_sells_nothing_away():
    sim = steady_shop()
    now = 27 * DAY + 120
    sim.feed(sim.ev.order("M1", [("K", FREE)], channel="market", paid=True, ts=now))
    assert sim.book("K").wos["shop"].sold_away == 0


def test_a_channel_without_demand_keeps_no_record():
    sim = Sim()
    e = sim.ev
    sim.feed(e.node("A"), e.channel("shop", wos_weeks=2), e.channel("market"),
             e.snapshot("K", "A", 50, seq=1))
    sim.feed(e.order("M1", [("K", 5)], channel="market", paid=True))
    assert sim.book("K").wos is None  # the market has no wos_weeks
    sim.feed(e.order("S1", [("K", 1)], channel="shop", paid=True, ts=0))
    assert set(sim.book("K").wos) == {"shop"}
    sim.feed(e.order("M2", [("K", 1)], channel="market", paid=True, ts=10 * DAY))
    sim.feed(e.order("S2", [("K", 1)], channel="shop", paid=True, ts=20 * DAY))
    assert set(sim.book("K").wos) == {"shop"}  # ordering again: kept
    sim.feed(e.channel("shop", wos_weeks=None, ts=20 * DAY))
    sim.feed(e.order("X", [("K", 1)], channel="shop", paid=True, ts=20 * DAY))
    assert sim.book("K").wos is None  # no longer protected: forgotten at its next count


def test_the_records_survive_a_restore_and_older_snapshots_restore():
    sim = steady_shop()
    (ledger,) = [l for l in sim.engine.ledgers.values() if "K" in l.books]
    restored = Ledger.restore(ledger.snapshot(), sim.engine.config)
    assert restored.books["K"].wos == ledger.books["K"].wos
    # A snapshot taken before books kept WOS records (and what came after).
    older = older_snapshot(ledger, "wos")
    assert Ledger.restore(older, sim.engine.config).books["K"].wos is None


# -- properties, on the promise tests' random histories with two protecting channels --------


def with_wos(events: list, web: float, live: float) -> list:
    """The histories' web and live channels with `wos_weeks`: each order then protects
    about wos_weeks x its units, close to the few units the histories' nodes hold."""
    weeks = {"web": web, "live": live}
    out = []
    for ev in events:
        if type(ev) is ChannelUpserted and ev.channel.id in weeks:
            ev = msgspec.structs.replace(ev, channel=msgspec.structs.replace(
                ev.channel, wos_weeks=weeks[ev.channel.id]))
        out.append(ev)
    return out


weeks = st.sampled_from([0.5, 1.0, 2.0, 3.0])


@PROPERTY
@given(histories(), weeks, weeks)
def test_protection_never_causes_an_oversell(events, web, live):
    events = with_wos(events, web, live)
    outputs = run(events)  # checks every book after every event too
    auditor = audit(events, outputs)
    assert auditor.events_checked == len({e.event_id for e in events})


@PROPERTY
@given(histories(max_events=30), weeks, weeks)
def test_a_channel_never_gets_more_than_its_published_availability(events, web, live):
    """max_line_qty (= availability for a channel that splits) of each channel is exactly what
    one paid line can get, protection included."""
    max_line_qty_is_what_one_line_can_get(with_wos(events, web, live), EngineConfig(buckets=3))


@PROPERTY
@given(histories(), weeks, weeks, st.data())
def test_a_restore_mid_stream_changes_nothing(events, web, live, data):
    events = with_wos(events, web, live)
    crash_and_restore_resumes_exactly(events, data.draw(st.integers(0, len(events))),
                                      EngineConfig(buckets=3))


@PROPERTY
@given(histories(), weeks, weeks)
def test_with_protection_on_nothing_protected_is_sold_away(events, web, live):
    """Protection on: no channel runs out after others sold its protected units; off, the
    same history still keeps the promise."""
    events = with_wos(events, web, live)
    on = run(events, config=EngineConfig(buckets=3))
    off = run(events, config=EngineConfig(buckets=3, wos_protection=False))
    audit(events, off)
    assert not alerts(on, "wos_sold_away")


def test_explain_prints_the_units_protected_for_other_channels(tmp_path, capsys):
    e = Script()
    events = [e.node("A"), e.channel("shop", wos_weeks=2, allow_split=True),
              e.channel("market", allow_split=True), e.snapshot("K", "A", 1000, seq=1)]
    events += [e.order(f"S{d}", [("K", 10)], channel="shop", paid=True, ts=d * DAY)
               for d in range(28)]
    events += [e.snapshot("K", "A", 480, seq=2, ts=27 * DAY + 60),
               e.order("M1", [("K", 100)], channel="market", paid=True, ts=27 * DAY + 120)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(msgspec.json.encode(ev) for ev in events) + b"\n")
    assert main(["explain", "M1", "--events", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "protected for other channels or regions: A 147" in printed and "not filled: no_stock" in printed
