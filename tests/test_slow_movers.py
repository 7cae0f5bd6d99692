"""Slow movers (state/slow_movers.py) over random sales histories: the engine flags a SKU
exactly when a plain model of the rule does, once per fall, with the model's figures."""

from __future__ import annotations

import re
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from stockflow.state.slow_movers import Sales, windows

from .scenario import T0
from .test_ledger import alerts, sell, selling, touch
from .test_promise import PROPERTY

WINDOW = 4  # days per window: short, so random histories cross the threshold often
MIN_UNITS = 3
DROP = 0.4
DETAIL = re.compile(rf"(\d+) units ordered in the {WINDOW} days to (\S+) against (\d+) in the "
                    rf"{WINDOW} days before: down [\d.]+%; on hand: .*")


def model(sales: dict[int, int], counts: set[int], days: int) -> list[tuple[int, int, int]]:
    """(day, recent, before) of each alert, from the whole history kept as it is, judged at
    the first event of each new day on the SKU (an order at 01:00, a count at 02:00)."""
    units: dict[int, int] = {}
    record = False  # the engine keeps a ring only for a SKU that sells
    judged = slow = None
    out = []
    for day in range(days):
        events = (["order"] if sales.get(day) else []) + (["count"] if day in counts else [])
        for kind in events:
            if record and judged < day:
                recent = sum(units.get(d, 0) for d in range(day - WINDOW, day))
                before = sum(units.get(d, 0) for d in range(day - 2 * WINDOW, day - WINDOW))
                if before >= MIN_UNITS:
                    now_slow = (before - recent) / before >= DROP
                    if now_slow and not slow:
                        out.append((day, recent, before))
                    slow = now_slow
                if not slow and not any(units.get(d, 0) for d in range(day - 2 * WINDOW, day + 1)):
                    record, units, slow = False, {}, None
            judged = day
            if kind == "order":
                if not record:
                    record, slow = True, False
                units[day] = units.get(day, 0) + sales[day]
    return out


@PROPERTY
@given(st.data())
def test_the_engine_flags_what_the_rule_says_once_per_fall(data):
    days = data.draw(st.integers(2 * WINDOW + 2, 8 * WINDOW))
    sales = data.draw(st.dictionaries(st.integers(0, days - 1), st.integers(1, 6)))
    counts = data.draw(st.sets(st.integers(0, days - 1)))
    sim = selling(slow_mover_window_days=WINDOW, slow_mover_min_units=MIN_UNITS,
                  slow_mover_drop=DROP)
    out = []
    for day in range(days):  # the order at 01:00, the count at 02:00 of each day
        if day in sales:
            out += sell(sim, {day: sales[day]})
        if day in counts:
            out += touch(sim, day)
    flagged = []
    for alert in alerts(out, "slow_mover"):
        recent, last_whole_day, before = DETAIL.fullmatch(alert.detail).groups()
        day = (date.fromisoformat(last_whole_day) - T0.date()).days + 1  # judged the day after
        flagged.append((day, int(recent), int(before)))
    assert flagged == model(sales, counts, days)


@given(st.lists(st.integers(0, 9), min_size=3, max_size=61), st.integers(0, 10**6),
       st.integers(1, 30))
def test_the_windows_read_from_the_ring_are_the_days_counted(units, today, window):
    window = min(window, (len(units) - 1) // 2)
    sales = Sales(today, units)
    ring = len(units)
    plain = (sum(units[d % ring] for d in range(today - window, today)),
             sum(units[d % ring] for d in range(today - 2 * window, today - window)))
    assert windows(sales, window) == plain
