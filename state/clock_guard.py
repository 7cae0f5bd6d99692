"""The clock guard: one event cannot move the engine's clock far ahead on its own word.

The clock is the highest event time seen, and everything time does (holds expiring,
transfers running late, inbound supply coming due, sweeps) follows it. One producer with a bad
clock or a placeholder date (`2099-01-01`) would expire every hold of every SKU at once and
give every later hold a deadline decades away. So an event stamped more than
`max_clock_jump_s` beyond the clock is *held back* and judged by the next event of the merged
input (a `clock.tick` included):
- the next one lies no more than `max_clock_jump_s` before it: the time is confirmed (the
  whole input moved, as after a long outage); it is applied, then the next one;
- else it is refused: a dead letter `ts_implausible`, its content kept, and nothing else
  changes: the next event applies as if it had never come;
- the input ends while one is held (end of a file or of a drain): refused.
Deterministic: it depends on the merged input alone, so live mode and a replay of what it
recorded decide alike. The first event has no clock to be judged against and sets it.

Every clock move of more than `clock_jump_alert_s` raises an alert `clock_jump` naming the
event that moved it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec

from .events import epoch_ms
from .outputs import Alert, DeadLetter

_ENCODE = msgspec.json.Encoder().encode


class ClockGuard:
    """Holds back at most one event whose time is in doubt, with its place in the input."""

    __slots__ = ("max_jump_ms", "alert_ms", "held", "held_seq")

    def __init__(self, max_jump_s: float, alert_s: float) -> None:
        self.max_jump_ms = int(max_jump_s * 1000)
        self.alert_ms = int(alert_s * 1000)
        self.held = None  # the event held back, or None
        self.held_seq = 0  # its place in the merged input

    def in_doubt(self, ts_ms: int, clock_ms: int) -> bool:
        """Whether an event stamped `ts_ms` would move the clock too far to be trusted alone."""
        return clock_ms > 0 and ts_ms - clock_ms > self.max_jump_ms

    def hold(self, ev, seq: int) -> None:
        self.held, self.held_seq = ev, seq

    def confirmed_by(self, ts_ms: int) -> bool:
        """Whether an event stamped `ts_ms`, next after the one held, confirms its time."""
        return ts_ms >= epoch_ms(self.held.ts) - self.max_jump_ms

    def take(self):
        """The event held back (and its place), no longer held."""
        ev, seq = self.held, self.held_seq
        self.held = None
        return ev, seq

    def jump_alert(self, ev, from_ms: int, to_ms: int) -> Alert | None:
        """An alert when `ev` moved the clock by more than the alert threshold."""
        if from_ms <= 0 or to_ms - from_ms <= self.alert_ms:
            return None
        before = datetime.fromtimestamp(from_ms / 1000, timezone.utc).isoformat()
        return Alert(ts=ev.ts, cause=ev.event_id, kind="clock_jump",
                     sku=getattr(ev, "sku", "") or "",
                     detail=f"{ev.event_id} moved the clock {_span(to_ms - from_ms)} ahead, "
                            f"from {before} to {ev.ts.isoformat()}")


def implausible(ev, clock_ts: datetime, max_jump_ms: int, by=None) -> DeadLetter:
    """The dead letter of an event refused for its time; `by`: the event that did not
    confirm it (None: the input ended)."""
    why = f"the next event, {by.event_id}, is stamped {by.ts.isoformat()}" if by is not None \
        else "no event came after it"
    return DeadLetter(
        ts=clock_ts, cause=ev.event_id, raw=_ENCODE(ev).decode(), source="engine",
        reason="ts_implausible",
        error=f"stamped {ev.ts.isoformat()}, more than {_span(max_jump_ms)} beyond the clock "
              f"({clock_ts.isoformat()}), and not confirmed: {why}",
    )


def _span(ms: int) -> str:
    days = ms / 86_400_000
    return f"{days:.1f} days" if days >= 1 else f"{ms / 3_600_000:.1f} hours"
