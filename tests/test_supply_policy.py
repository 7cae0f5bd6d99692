"""Future supply per channel and kind: what a channel counts, the ATP it sees, promise dates.

The pure rules (`supply_policy.py`, the kind windows of `inbound.py`) against a recount by
brute force, over random supplies and policies; then the engine: availability, sourcing,
`promised_at`, the router's InboundDue at a policy's own horizon, explain and the read side;
and the promise with mixed policies over the random histories of `test_promise.py`.
"""

from __future__ import annotations

from datetime import timedelta
from math import floor

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import (
    Channel,
    ChannelUpserted,
    ClockTick,
    OrderCreated,
    SupplyInbound,
    SupplyTerms,
)
from stockflow.state.explain import Explainer
from stockflow.state.node_position import node_positions, policy_views
from stockflow.state.outputs import OrderStatus
from stockflow.state.position import Position
from stockflow.state.supply_policy import (
    channel_atp,
    counted_inbound,
    promise_date,
    supply_view,
)

from .invariants import audit
from .scenario import DAY, T0, Script, Sim, availability, of, statuses
from .test_promise import (
    PROPERTY,
    check_books,
    crash_and_restore_resumes_exactly,
    event_body,
    histories,
)

KINDS = ("in_transit", "production", "purchase_order")
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ENGINE_HORIZON_MS = 3 * DAY_MS

terms = st.builds(SupplyTerms, share=st.sampled_from([0.0, 0.25, 0.5, 0.7, 1.0]),
                  horizon_s=st.sampled_from([None, 0.0, 3600.0, 3 * 86400.0, 7 * 86400.0]))
policies = st.one_of(st.none(), st.dictionaries(st.sampled_from(KINDS), terms, max_size=3))
supplies = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(1, 9),
                              st.integers(-DAY_MS, 10 * DAY_MS)), max_size=8)


def channel(supply) -> Channel:
    return Channel(id="c", nodes=["*"], hold_ttl_s=60, allow_split=True, backorder=False,
                   supply=supply)


def position(entries, on_hand=6, held=1, allocated=2, safety=1) -> Position:
    pos = Position(on_hand=on_hand, held=held, allocated=allocated, safety_stock=safety)
    for i, (kind, qty, eta) in enumerate(entries):
        pos.set_inbound(f"S{i}", qty, eta, kind)
    return pos


def recount(entries, supply, clock_ms) -> int:
    """What a policy counts, by its definition: per kind, the share (rounded down) of the
    units whose ETA lies within the kind's horizon."""
    if supply is None:
        return sum(q for _, q, eta in entries if eta <= clock_ms + ENGINE_HORIZON_MS)
    counted = 0
    for kind, rule in supply.items():
        horizon = ENGINE_HORIZON_MS if rule.horizon_s is None else int(rule.horizon_s * 1000)
        due = sum(q for k, q, eta in entries if k == kind and eta <= clock_ms + horizon)
        counted += floor(rule.share * due + 1e-9)
    return counted


# -- the rules, pure --------------------------------------------------------------------


@settings(max_examples=400)
@given(supplies, policies, st.integers(0, 4 * DAY_MS))
def test_a_channel_counts_its_share_of_each_kind_within_its_horizon(entries, supply, clock):
    pos = position(entries)
    view = supply_view(channel(supply), ENGINE_HORIZON_MS)
    atp = channel_atp(pos, clock + ENGINE_HORIZON_MS, view)
    assert atp == 6 - 1 - 2 - 1 + recount(entries, supply, clock)
    # no channel's view exceeds the all-inbound view
    assert atp <= pos.on_hand + pos.inbound_qty - pos.committed - pos.safety_stock


@settings(max_examples=200)
@given(supplies, st.integers(0, 4 * DAY_MS))
def test_no_policy_is_the_engines_view_and_an_empty_one_is_on_hand_only(entries, clock):
    pos = position(entries)
    until = clock + ENGINE_HORIZON_MS
    assert supply_view(channel(None), ENGINE_HORIZON_MS) is None
    assert channel_atp(pos, until, None) == pos.atp(until)
    assert channel_atp(pos, until, supply_view(channel({}), ENGINE_HORIZON_MS)) == 6 - 1 - 2 - 1
    whole = {k: SupplyTerms() for k in KINDS}  # every kind, whole, the engine's horizon
    assert channel_atp(pos, until, supply_view(channel(whole), ENGINE_HORIZON_MS)) == pos.atp(until)


def test_shares_are_rounded_down_and_unlisted_kinds_are_not_promised():
    pos = position([("production", 7, DAY_MS), ("purchase_order", 50, DAY_MS)], on_hand=0,
                   held=0, allocated=0, safety=0)
    view = supply_view(channel({"production": SupplyTerms(share=0.5)}), ENGINE_HORIZON_MS)
    assert counted_inbound(pos, view, ENGINE_HORIZON_MS) == 3  # 0.5 of 7; purchase orders not listed
    view = supply_view(channel({"production": SupplyTerms(share=0.29)}), ENGINE_HORIZON_MS)
    pos.set_inbound("S0", 100, DAY_MS, "production")
    assert counted_inbound(pos, view, ENGINE_HORIZON_MS) == 29  # not 28 (0.29 x 100 in floating point)


OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(["S1", "S2", "S3", "S4"]), st.integers(0, 9),
              st.integers(0, 10 * DAY_MS), st.sampled_from(KINDS)),
    st.tuples(st.just("receive"), st.sampled_from(["S1", "S2", "S3", "S4"]), st.integers(1, 9)),
    st.tuples(st.just("ask"), st.sampled_from(KINDS), st.sampled_from([0, HOUR_MS, 7 * DAY_MS]),
              st.integers(0, 4 * DAY_MS)),
    st.tuples(st.just("advance"), st.integers(0, 4 * DAY_MS)),
)


@settings(max_examples=400)
@given(st.lists(OPS, max_size=40))
def test_kind_windows_kept_incrementally_equal_a_recount(ops):
    """Each (kind, horizon) window answers as a walk over the entries would, whatever the
    announcements, revisions, receipts, questions and clocks (late ones included)."""
    pos = Position()
    for op in ops:
        if op[0] == "set":
            pos.set_inbound(op[1], op[2], op[3], op[4])
        elif op[0] == "receive":
            pos.receive_inbound(op[1], op[2])
        elif op[0] == "ask" and pos.inbound is not None:
            _, kind, horizon, clock = op
            entries = pos.inbound.entries.values()
            want = sum(i.qty for i in entries if i.kind == kind and i.eta_ms <= clock + horizon)
            assert pos.inbound.due_of_kind(kind, horizon, clock + horizon) == want
        elif op[0] == "advance":
            pos.advance_windows(op[1])
        for window in (pos.inbound.windows or ()) if pos.inbound is not None else ():
            entries = pos.inbound.entries.values()
            assert window.due == sum(i.qty for i in entries
                                     if i.kind == window.kind and i.eta_ms <= window.until)
            later = [i.eta_ms for i in entries if i.kind == window.kind and i.eta_ms > window.until]
            assert later == [] or (window.next_eta is not None and window.next_eta <= min(later))


@settings(max_examples=400)
@given(supplies, policies, st.integers(0, 8), st.integers(0, 6), st.integers(1, 12),
       st.integers(0, 2 * DAY_MS))
def test_the_promise_date_is_the_eta_that_covers_the_shortfall(entries, supply, on_hand,
                                                                committed, qty, clock):
    pos = position(entries, on_hand=on_hand, held=committed, allocated=0, safety=0)
    until = clock + ENGINE_HORIZON_MS
    view = supply_view(channel(supply), ENGINE_HORIZON_MS)
    if channel_atp(pos, until, view) < qty:
        return  # sourcing would not commit it here on this view
    when = promise_date(pos, qty, until, view)
    need = committed + qty - on_hand
    if need <= 0:
        assert when is None  # on hand covers it
        return
    # the earliest ETA by which what the view counts covers the need
    covered = [eta for _, _, eta in entries
               if recount([e for e in entries if e[2] <= eta], supply, clock) >= need]
    assert when == min(covered)


# -- the engine ---------------------------------------------------------------------------

K = "SKU-1"
WEEK = 7 * DAY


def three_channels() -> Sim:
    """Node A with 2 on hand of K; 5 in transit due in a day, 10 in production due in five,
    20 on a purchase order due tomorrow. `web` has no policy (the engine's 3-day horizon),
    `shop` is on hand only, `b2b` counts transit within 3 days and half of production within
    a week, no purchase orders."""
    sim = Sim()
    e = sim.ev
    sim.feed(
        e.node("A"),
        e.channel("web", allow_split=True),
        e.channel("shop", supply={}),
        e.channel("b2b", allow_split=True,
                  supply={"in_transit": (1.0, 3 * DAY), "production": (0.5, WEEK)}),
        e.snapshot(K, "A", 2),
        e.inbound("TR-1", K, "A", 5, eta_s=DAY),
        e.inbound("PR-1", K, "A", 10, eta_s=5 * DAY, kind="production"),
    )
    return sim


def test_each_channel_sells_what_its_policy_counts():
    sim = three_channels()
    out = sim.feed(sim.ev.inbound("PO-1", K, "A", 20, eta_s=DAY, kind="purchase_order"))
    assert availability(out) == {(K, "web"): 27}  # b2b does not count purchase orders
    assert sim.book(K).published == {"web": 27, "shop": 2, "b2b": 12}
    assert sim.book(K).published_line == {"web": 27, "shop": 2, "b2b": 12}


def test_a_line_beyond_on_hand_is_promised_for_the_eta_that_covers_it():
    sim = three_channels()
    e = sim.ev
    eta_pr = T0 + timedelta(seconds=5 * DAY + 6)  # PR-1 was announced at T0 + 6 s
    out = sim.feed(e.order("B1", [(K, 10)], channel="b2b", paid=True))
    # 2 on hand, 5 in transit (day 1), half of production (day 5): 10 covered on day 5
    [st_] = of(out, OrderStatus)
    assert (st_.status, st_.node, st_.qty, st_.promised_at) == ("allocated", "A", 10, eta_pr)
    # what b2b committed is committed for everyone: web and shop have nothing left
    assert availability(out) == {(K, "web"): 0, (K, "shop"): 0, (K, "b2b"): 2}
    out = sim.feed(e.order("W1", [(K, 1)], channel="web", paid=True))
    assert statuses(out) == [("W1", "1", "rejected", None, 1)]


def test_lines_served_from_on_hand_carry_no_date_and_transit_covers_the_rest():
    sim = three_channels()
    e = sim.ev
    out = sim.feed(e.order("W1", [(K, 2)], channel="web"))  # held, on hand covers it
    assert [s.promised_at for s in of(out, OrderStatus)] == [None]
    out = sim.feed(e.order("W2", [(K, 3)], channel="web"))
    [held] = of(out, OrderStatus)
    assert held.promised_at == T0 + timedelta(seconds=DAY + 5)  # TR-1's ETA
    out = sim.feed(e.paid("W2"))  # the allocation keeps the date of its hold
    [allocated] = of(out, OrderStatus)
    assert (allocated.status, allocated.promised_at) == ("allocated", held.promised_at)


def test_an_on_hand_only_channel_never_sells_inbound():
    sim = three_channels()
    out = sim.feed(sim.ev.order("S1", [(K, 3)], channel="shop", paid=True))
    assert statuses(out) == [("S1", "1", "rejected", None, 3)]
    assert of(out, OrderStatus)[0].reason == "no_stock"


def test_supply_comes_within_a_policys_own_horizon_by_the_clock_alone():
    """Production due in nine days: b2b (a week ahead) counts half of it from day two on,
    with no event of the SKU, only the clock moving (as web, 3 days ahead, counts PR-1)."""
    sim = three_channels()
    e = sim.ev
    sim.feed(e.inbound("PR-2", K, "A", 4, eta_s=9 * DAY, kind="production"))
    out = sim.feed(ClockTick(event_id="tick-1", ts=T0 + timedelta(seconds=DAY)))
    assert (K, "b2b") not in availability(out)
    out = sim.feed(ClockTick(event_id="tick-2", ts=T0 + timedelta(seconds=2 * DAY + 60)))
    assert availability(out) == {(K, "b2b"): 14, (K, "web"): 17}  # 12 + half of 4; 7 + 10


def test_explain_and_the_read_side_show_each_channels_view():
    sim = three_channels()
    explainer = Explainer("B1")
    for ledger in sim.engine.ledgers.values():
        ledger.explain = explainer
    sim.feed(sim.ev.order("B1", [(K, 4)], channel="b2b"))
    [sourcing] = explainer.sourcings
    [a] = [v for v in sourcing.nodes if v.node == "A"]
    assert (a.inbound_due, a.atp, a.won) == (10, 12, 4)  # 5 in transit + 5 of production
    ledger = next(lg for lg in sim.engine.ledgers.values() if K in lg.books)
    views = policy_views(ledger.catalog.channels, ledger.horizon_ms)
    assert set(views) == {"shop", "b2b"}
    pos = node_positions(ledger.books[K], views)["A"]
    assert (pos.atp, pos.by_channel) == (3, {"shop": -2, "b2b": 8})  # 7 - 4, 2 - 4, 12 - 4


def test_stockflow_explain_shows_the_channels_count_and_the_promise_date(tmp_path, capsys):
    import msgspec

    from stockflow.ops.cli import main

    e = Script()
    events = [e.node("A"),
              e.channel("b2b", allow_split=True,
                        supply={"in_transit": (1.0, 3 * DAY), "production": (0.5, WEEK)}),
              e.snapshot(K, "A", 2), e.inbound("TR-1", K, "A", 5, eta_s=DAY),
              e.inbound("PR-1", K, "A", 10, eta_s=5 * DAY, kind="production"),
              e.order("B1", [(K, 10)], channel="b2b", paid=True)]
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(msgspec.json.encode(ev) + b"\n" for ev in events))
    assert main(["explain", "B1", "--events", str(path)]) == 0
    text = capsys.readouterr().out
    # ATP 12: 2 on hand + 10 counted (5 in transit, half of 10 in production)
    [row] = [line.split() for line in text.splitlines() if line.split()[:2] == ["1", "A"]]
    assert row[6:9] == ["12", "2", "10"]  # ATP, on hand, inbound counted
    assert "status: allocated at A 10, promised 2026-11-16T00:00:04Z" in text


# -- the promise with mixed policies --------------------------------------------------------

mixed_body = st.one_of(
    event_body,
    st.fixed_dictionaries({
        "type": st.just(SupplyInbound),
        "supply_id": st.sampled_from(["PO-1", "PO-2", "PO-3", "TR-9"]),
        "sku": st.sampled_from(["K1", "K2"]), "node": st.sampled_from(["N-EAST", "N-SOUTH",
                                                                      "S-EAST"]),
        "qty": st.integers(0, 6),
        "eta": st.sampled_from([T0 - timedelta(hours=1), T0 + timedelta(minutes=2),
                                T0 + timedelta(days=2), T0 + timedelta(days=5),
                                T0 + timedelta(days=10)]),
        "kind": st.sampled_from(KINDS)}),
)


@st.composite
def mixed_histories(draw):
    """The random histories of test_promise.py, each channel given a random supply policy."""
    events = draw(histories(body=mixed_body, debts=(0, 1)))
    chosen = {}
    for i, ev in enumerate(events):
        if type(ev) is ChannelUpserted:
            supply = chosen.setdefault(ev.channel.id, draw(policies))
            events[i] = ChannelUpserted(event_id=ev.event_id, ts=ev.ts, channel=Channel(
                id=ev.channel.id, nodes=ev.channel.nodes, hold_ttl_s=ev.channel.hold_ttl_s,
                allow_split=ev.channel.allow_split, backorder=ev.channel.backorder,
                supply=supply))
    return events, chosen


def check_views(engine, chosen) -> None:
    """Every channel's published availability is at most the all-inbound view of its nodes,
    and exactly the on-hand view for an on-hand-only channel."""
    for _, ledger in engine.ledgers.items():
        catalog = ledger.catalog
        for sku, book in ledger.books.items():
            kept_out = book.kept_out()
            for channel_id in catalog.channels:
                members = catalog.channel_nodes(channel_id)
                nodes = [(n, p) for n, p in book.positions.items() if n in members]
                whole = sum(max(0, p.on_hand + p.inbound_qty - p.committed - p.safety_stock
                                - kept_out.get(n, 0)) for n, p in nodes)
                published = book.published.get(channel_id, 0)
                assert published <= whole, (sku, channel_id)
                if chosen.get(channel_id) == {}:
                    on_hand = sum(max(0, p.on_hand - p.committed - p.safety_stock
                                      - kept_out.get(n, 0)) for n, p in nodes)
                    assert published == on_hand, (sku, channel_id)


@PROPERTY
@given(mixed_histories())
def test_mixed_policies_keep_the_promise_after_every_event(drawn):
    """No node over-committed (the auditor, from inputs and outputs; the engine's books),
    no channel's view above the all-inbound one, on-hand-only channels exactly on hand and
    never a promise date."""
    events, chosen = drawn
    engine = Engine(EngineConfig(buckets=3))
    outputs: list = []
    for ev in events:
        outputs.extend(engine.process([ev]))
        check_books(engine)
        check_views(engine, chosen)
    audit(events, outputs)
    on_hand_only = {c for c, supply in chosen.items() if supply == {}}
    channel_of: dict[str, str] = {}
    for ev in events:
        if type(ev) is OrderCreated:
            channel_of.setdefault(ev.order_id, ev.channel)  # a resent order is dropped
    for out in of(outputs, OrderStatus):
        # An on-hand-only channel places from on hand alone, never for a date; only where
        # the shelf later shrinks under its lines do they wait for inbound, and are told so.
        if channel_of.get(out.order_id) in on_hand_only and out.reason != "promise_moved":
            assert out.promised_at is None, out


@PROPERTY
@given(mixed_histories(), st.data())
def test_mixed_policies_resume_exactly_after_a_crash(drawn, data):
    """Kind windows (ledger snapshots) and policy horizons' due times (the router's) survive a
    restore: the run carries on as if nothing happened."""
    events, _ = drawn
    crash_and_restore_resumes_exactly(events, data.draw(st.integers(0, len(events))),
                                      EngineConfig(buckets=3))
