"""The generator's schedule: arrivals spread over their windows, everything out in time order."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.ops.generate.budget import Budget
from stockflow.ops.generate.scenario import ORDER_START_MS, SPIKE_WINDOW_MS
from stockflow.ops.generate.schedule import (
    ARRIVALS, DUPLICATE, FOLLOW_UP, ORDER, SPIKE_ORDER, SUPPLY, Schedule,
)
from stockflow.state import events as ev


def _budget(n_normal, n_spike, n_supply, span_ms, spike_start):
    return Budget(n_normal=n_normal, n_spike=n_spike, n_supply=n_supply, n_malformed=0,
                  p_malformed=0.0, span_ms=span_ms, spike_start=spike_start)


@settings(max_examples=200)
@given(st.integers(0, 300), st.integers(0, 100), st.integers(0, 100),
       st.integers(1, 10_000_000), st.integers(0, 2**32))
def test_each_process_arrives_as_often_as_budgeted_inside_its_window(
        n_normal, n_spike, n_supply, span_ms, seed):
    spike_start = ORDER_START_MS + span_ms // 2
    schedule = Schedule(random.Random(seed), _budget(n_normal, n_spike, n_supply, span_ms,
                                                     spike_start))
    for kind in ARRIVALS:
        schedule.arrival(kind)
    times = {ORDER: [], SPIKE_ORDER: [], SUPPLY: []}
    last = -1
    for t, _, kind, *_ in schedule.due():
        assert t >= last
        last = t
        times[kind].append(t)
        schedule.arrival(kind)
    assert [len(times[k]) for k in ARRIVALS] == [n_normal, n_spike, n_supply]
    windows = {ORDER: (ORDER_START_MS, span_ms), SUPPLY: (ORDER_START_MS, span_ms),
               SPIKE_ORDER: (spike_start, SPIKE_WINDOW_MS)}
    for kind, (start, width) in windows.items():
        assert all(start <= t <= start + width for t in times[kind])


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 20), st.booleans()), max_size=60))
def test_planned_entries_leave_by_time_then_first_planned_first(plans):
    schedule = Schedule(random.Random(0), _budget(0, 0, 0, 1, 0))
    for i, (t, duplicate) in enumerate(plans):
        if duplicate:
            schedule.duplicate(t, b"line %d" % i)
        else:
            schedule.follow_up(t, ev.OrderPaid, {"order_id": str(i)})
    out = []
    for t, _, kind, a, b, _ in schedule.due():
        out.append((t, int(a.split()[1]) if kind == DUPLICATE else int(b["order_id"])))
        assert kind in (DUPLICATE, FOLLOW_UP)
    assert out == sorted((t, i) for i, (t, _) in enumerate(plans))
