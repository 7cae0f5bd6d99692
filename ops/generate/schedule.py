"""What comes next in event time: the arrivals of orders, flash-sale orders and supply ticks,
the follow-ups they plan (payments, cancels, returns, receipts) and exact duplicates.

Each arrival process places its `n` arrivals as the sorted draws of `n` uniform times over
its window, drawn one at a time (the next one only when the last has arrived), so the heap
holds one pending arrival per process. Entries are `(t, ticket, kind, a, b, c)`; the ticket
keeps equal times first in, first out, and the comparison never reaches past it.
"""

from __future__ import annotations

import heapq
from itertools import count
from random import Random
from typing import Iterator

from .budget import Budget
from .scenario import ORDER_START_MS, SPIKE_WINDOW_MS

# what an entry is: (a, b, c) are (event type, its fields, the nulls to leave out) for a
# follow-up, (the line, None, None) for a duplicate, (None, None, None) for an arrival
FOLLOW_UP, DUPLICATE, ORDER, SPIKE_ORDER, SUPPLY = range(5)  # the arrival kinds come last
ARRIVALS = (ORDER, SPIKE_ORDER, SUPPLY)


class Schedule:
    """A heap of what is planned, in time order; see the module's docstring."""

    def __init__(self, rng: Random, budget: Budget) -> None:
        self._rnd = rng.random
        self._heap: list[tuple] = []
        self._tickets = count(1)
        # per arrival process, indexed by its kind: arrivals left, the window (start, width)
        # in ms after BASE_TIME, the share of the window passed
        self._left = [0, 0, budget.n_normal, budget.n_spike, budget.n_supply]
        self._start = [0, 0, ORDER_START_MS, budget.spike_start, ORDER_START_MS]
        self._width = [0, 0, budget.span_ms, SPIKE_WINDOW_MS, budget.span_ms]
        self._frac = [0.0] * 5

    def arrival(self, kind: int) -> None:
        """Plans the next arrival of process `kind`, if it has any left."""
        n_left = self._left[kind]
        if n_left <= 0:
            return
        self._left[kind] = n_left - 1
        # the smallest of n_left uniform draws over what is left of the window
        x = 1.0 - (1.0 - self._frac[kind]) * (1.0 - self._rnd()) ** (1.0 / n_left)
        self._frac[kind] = x
        t = self._start[kind] + int(x * self._width[kind])
        heapq.heappush(self._heap, (t, next(self._tickets), kind, None, None, None))

    def follow_up(self, t: int, event_type: type, fields: dict,
                  nulls: tuple[bytes, ...] = ()) -> None:
        """Plans an event of `event_type` with `fields` at time t (its id and ts are given
        when it is written), the None fields in `nulls` to be left out of its line."""
        heapq.heappush(self._heap, (t, next(self._tickets), FOLLOW_UP, event_type, fields, nulls))

    def duplicate(self, t: int, line: bytes) -> None:
        """Plans `line` again, after what is already planned at time t."""
        heapq.heappush(self._heap, (t, next(self._tickets), DUPLICATE, line, None, None))

    def due(self) -> Iterator[tuple]:
        """The entries in time order, including those planned while they are read."""
        heap, pop = self._heap, heapq.heappop
        while heap:
            yield pop(heap)
