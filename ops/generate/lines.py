"""How an event becomes a line of the trace.

Event ids are `g-1`, `g-2`, ... in the order lines are made (a follow-up gets its id when it
is written, not when it is planned). Times are written in whole milliseconds, `.mmmZ`, as the
contract asks; msgspec writes microseconds or none. Optional fields left None are dropped
from the line rather than written as null (cosmetic: the decoder reads both alike).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

import msgspec

from .scenario import BASE_TIME

_MS = timedelta(milliseconds=1)

PICKUP_NULL = b',"pickup_node":null'
HOLD_NULL = b',"hold_id":null'
SHIP_ORDER_NULLS = (PICKUP_NULL, HOLD_NULL)  # an order shipped to a customer
PICKUP_ORDER_NULLS = (HOLD_NULL,)  # an order picked up at a store
LINE_IDS_NULL = (b',"line_ids":null',)  # a cancel of the whole order
ORDER_UP_TO_NULL = (b',"order_up_to":null',)
WOS_WEEKS_NULL = (b',"wos_weeks":null',)
SUPPLY_NULL = (b',"supply":null',)  # a channel without a supply policy of its own


class LineWriter:
    """Writes events as JSON lines (bytes, no newline) with the trace's ids and times: each
    event is made with the id and time `next_event(t)` gives, then written by `line()`."""

    def __init__(self) -> None:
        self._encode = msgspec.json.Encoder().encode
        self._ids = count(1)
        # the time of the event being made; lines come in runs at one time, so it is kept
        self._t = -1
        self._dt, self._old, self._new = BASE_TIME, b"", b""

    def stamp(self, t: int) -> tuple[datetime, bytes, bytes]:
        """(the datetime t ms after BASE_TIME, msgspec's encoding of it, the same in whole
        milliseconds)."""
        dt = BASE_TIME + _MS * t  # exact, and faster than timedelta(milliseconds=t)
        old = self._encode(dt)
        return dt, old, old[:-5] + b'Z"' if len(old) == 29 else old[:-2] + b'.000Z"'

    def next_event(self, t: int) -> tuple[str, datetime]:
        """The id and the datetime of the next event, at time t."""
        if t != self._t:
            self._t = t
            self._dt, self._old, self._new = self.stamp(t)
        return f"g-{next(self._ids)}", self._dt

    def line(self, event, nulls: tuple[bytes, ...] = ()) -> bytes:
        """The line of the event made with the last `next_event()`, the None fields in
        `nulls` left out."""
        line = self._encode(event).replace(self._old, self._new, 1)
        for null in nulls:
            line = line.replace(null, b"", 1)
        return line
