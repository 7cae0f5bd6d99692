"""Event-time alignment: one ordered stream out of many input partitions.

Kafka orders messages within a partition only, and platform teams spread events over
several partitions of several topics (orders by order id, stock by SKU, master data on its
own topic). Applied in arrival order, the same events would give different decisions every
run. So every input meets here and leaves in one order that depends only on what the
partitions recorded:

- each partition is taken in offset order;
- an event's merge key is its partition's *watermark* at that event: the highest `ts` the
  partition has shown up to and including it (an event stamped earlier than one before it
  keeps its place behind that one). An event stamped more than `max_jump_ms` beyond the
  watermark does not raise it unless the partition's next event confirms that time (the
  router's clock guard judges it: `clock_guard.py`): one wrong timestamp does not send the
  rest of its partition to the back of the merge;
- events leave by (key, partition rank, offset): ties go to the partition ranked first
  (master data, then stock, then orders);
- an event leaves once every other partition has either a buffered event after it, a
  watermark past it, or has ended. An empty partition that has shown nothing past it is
  waited for: live mode writes `clock.tick` events into quiet partitions, so the wait is
  short. After `idle_wait_ms` of waiting on one partition the merge goes on without it; what
  that partition delivers later behind the merged frontier is *late*: applied at once in
  arrival order, and counted (`late`), never silently.

`merged()` is the same order computed over complete partitions: what a replay of the
recorded topics applies, and what live mode applies whenever nothing was late.
Wall time (for the idle wait and for deciding which partitions need a tick) comes in as an
argument: nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable

from .events import ClockTick, epoch_ms

NEVER = -(2**62)  # the watermark of a partition that has shown nothing yet
MAX_JUMP_MS = 90 * 86_400_000  # as `EngineConfig.max_clock_jump_s`


def raised(wm: int, t: int, suspect: int | None, max_jump_ms: int) -> tuple[int, int | None]:
    """A partition's watermark and suspect time after an event stamped `t` (ms): a time more
    than `max_jump_ms` beyond the watermark is a suspect, trusted once the next one confirms
    it (is stamped no more than `max_jump_ms` before it)."""
    if t <= wm:
        return wm, None
    if wm == NEVER or t - wm <= max_jump_ms or (suspect is not None
                                                 and t >= suspect - max_jump_ms):
        return t, None
    return wm, t


class Aligner:
    """Buffers each partition's events and releases them in merged event-time order."""

    def __init__(self, partitions: Iterable[str] = (), idle_wait_ms: int = 5000,
                 max_jump_ms: int = MAX_JUMP_MS) -> None:
        self.idle_wait_ms = idle_wait_ms
        self.max_jump_ms = max_jump_ms
        self.suspect: dict[str, int] = {}  # partition -> a time in doubt (see `raised`)
        self.rank: dict[str, int] = {}
        self.buffers: dict[str, deque[tuple[int, Any]]] = {}
        self.watermark: dict[str, int] = {}
        self.ended: set[str] = set()
        self.idle: set[str] = set()  # passed over after the idle wait, until they deliver
        self.frontier = (NEVER, -1)  # (key, rank) of the last event released
        self.late = 0  # events that arrived behind the frontier, since start
        self.late_by: dict[str, int] = {}
        # Wall-clock bookkeeping (ms), reset on restore: when each partition last delivered,
        # since when it holds the merge up, when it was last sent a tick.
        self.arrived: dict[str, int] = {}
        self.waiting_since: dict[str, int] = {}
        # Since when each partition has lagged behind the newest event held (not only the
        # first): all of them are ticked at once, not one round trip after another.
        self.behind_since: dict[str, int] = {}
        self.ticked: dict[str, int] = {}
        self.last_round = NEVER  # when quiet partitions were last all sent a tick
        self.events_held = 0  # buffered events that are not ticks: worth a tick at once
        self.newest_held = (NEVER, -1)  # (key, rank) of the latest of them
        for part in partitions:
            self._know(part, 0)

    def _know(self, part: str, now_ms: int) -> None:
        if part not in self.rank:
            self.rank[part] = len(self.rank)
            self.buffers[part] = deque()
            self.watermark[part] = NEVER
            self.arrived[part] = now_ms

    # -- input --------------------------------------------------------------------------

    def add(self, part: str, events: list, now_ms: int, end: bool = False) -> None:
        """A partition's next events, in offset order; `end`: it has no more (a drain)."""
        self._know(part, now_ms)
        buf, wm, rank = self.buffers[part], self.watermark[part], self.rank[part]
        frontier, jump = self.frontier, self.max_jump_ms
        suspect = self.suspect.pop(part, None)
        for ev in events:
            ts = getattr(ev, "ts", None)  # a malformed message has none: it keeps its place
            if ts is not None:
                t = epoch_ms(ts)
                if t > wm or suspect is not None:
                    wm, suspect = raised(wm, t, suspect, jump)
            if (wm, rank) < frontier:
                self.late += 1
                self.late_by[part] = self.late_by.get(part, 0) + 1
            if type(ev) is not ClockTick:
                self.events_held += 1
                if (wm, rank) > self.newest_held:
                    self.newest_held = (wm, rank)
            buf.append((wm, ev))
        self.watermark[part] = wm
        if suspect is not None:
            self.suspect[part] = suspect
        if events:
            self.arrived[part] = now_ms
            self.idle.discard(part)
            self.waiting_since.pop(part, None)  # it is moving: any wait starts afresh
            self.behind_since.pop(part, None)
        if end:
            self.ended.add(part)

    def end_all(self) -> None:
        """Every input ended (end of a drain): nothing more is waited for."""
        self.ended.update(self.rank)

    # -- output -------------------------------------------------------------------------

    def release(self, now_ms: int) -> list:
        """Every event that may leave now, in merged order."""
        self._pass_over_idle(now_ms)
        out: list = []
        buffers = self.buffers
        while True:
            best, head = self._head()
            if best is None:
                break
            bound = self._bound(best)
            buf, r = buffers[best], head[1]
            released = 0
            while buf and (bound is None or (buf[0][0], r) < bound):
                key, ev = buf.popleft()
                out.append(ev)
                released += 1
                if type(ev) is not ClockTick:
                    self.events_held -= 1
                if (key, r) > self.frontier:
                    self.frontier = (key, r)
            if not released:
                break
        self._note_waiting(now_ms, head)
        return out

    def _head(self) -> tuple[str | None, tuple[int, int] | None]:
        """The partition whose next event comes first in the merge, and its (key, rank)."""
        best, head = None, None
        rank = self.rank
        for part, buf in self.buffers.items():
            if buf:
                key = (buf[0][0], rank[part])
                if head is None or key < head:
                    best, head = part, key
        return best, head

    def _bound(self, part: str) -> tuple[int, int] | None:
        """The earliest (key, rank) that another partition may still bring before `part`."""
        bound = None
        for q, buf in self.buffers.items():
            if q == part:
                continue
            if buf:
                b = (buf[0][0], self.rank[q])
            elif q in self.ended or q in self.idle:
                continue
            else:
                b = (self.watermark[q], self.rank[q])
            if bound is None or b < bound:
                bound = b
        return bound

    def _note_waiting(self, now_ms: int, head: tuple[int, int] | None) -> None:
        """Which empty partitions hold the merge up now (behind `head`, the first event still
        buffered), which have not shown past the newest event held (those it will wait on
        once it gets that far, buffered events or not), and since when."""
        waiting, behind = {}, {}
        newest = self.newest_held if self.events_held > 0 else None
        for q, buf in self.buffers.items():
            if q in self.ended or q in self.idle:
                continue
            mark = (self.watermark[q], self.rank[q])
            if not buf and head is not None and mark < head:
                waiting[q] = self.waiting_since.get(q, now_ms)
            if newest is not None and mark < newest:
                behind[q] = self.behind_since.get(q, now_ms)
        self.waiting_since, self.behind_since = waiting, behind

    def _pass_over_idle(self, now_ms: int) -> None:
        for q, since in list(self.waiting_since.items()):
            if now_ms - since >= self.idle_wait_ms:
                self.idle.add(q)
                del self.waiting_since[q]

    # -- wall-clock help for the caller -------------------------------------------------

    def next_deadline(self) -> int | None:
        """Wall ms at which waiting on a partition turns into passing it over."""
        if not self.waiting_since:
            return None
        return min(self.waiting_since.values()) + self.idle_wait_ms

    def due_ticks(self, now_ms: int, quiet_ms: int, waited_ms: int) -> list[str]:
        """Partitions that should get a `clock.tick` now.

        Every `quiet_ms`, one round: a tick into each partition that delivered nothing for
        `waited_ms`, all at once, so their ticks leave the merge together and the clock moves
        (holds expire) within about `quiet_ms` of wall time. In between, a partition the merge
        has waited on for `waited_ms` while events (not only ticks) are held gets one at once,
        unless the last one sent is not back yet; at most one per partition per `waited_ms`.
        That wait is counted from when the partition first lagged behind the newest event held,
        so every partition an event needs is ticked at once, not each in turn as the merge
        reaches it (one tick round trip after another)."""
        due = []
        round_due = now_ms - self.last_round >= quiet_ms
        if round_due:
            self.last_round = now_ms
        for part in self.rank:
            if part in self.ended or now_ms - self.ticked.get(part, NEVER) < waited_ms:
                continue
            quiet = now_ms - self.arrived[part] >= waited_ms
            # One tick on its way is enough: until the partition delivers again (the tick, or
            # data it had not yet handed over), another would say nothing new.
            answered = self.arrived[part] >= self.ticked.get(part, NEVER)
            # Only events are worth hurrying for: ticks held back alone wait for the next
            # round (asking for ticks on their behalf would breed ticks without end).
            urgent = self.events_held > 0 and answered
            since = self.behind_since.get(part) if urgent else None
            if (round_due and quiet) or (since is not None and now_ms - since >= waited_ms):
                due.append(part)
                self.ticked[part] = now_ms
        return due

    def resumed(self, now_ms: int) -> None:
        """Restored from a snapshot: wall times from before the stop mean nothing now, and a
        partition that ended in a drain may have grown since (a drain says its end again)."""
        self.ended.clear()
        if not hasattr(self, "suspect"):  # a snapshot from before the clock guard
            self.suspect, self.max_jump_ms = {}, MAX_JUMP_MS
        self.arrived = dict.fromkeys(self.rank, now_ms)
        self.waiting_since = {}
        self.behind_since = {}
        self.ticked = {}
        self.last_round = NEVER
        self.idle.clear()
        # From the buffers: snapshots taken before it was kept do not have it.
        self.newest_held = max(((key, self.rank[p]) for p, buf in self.buffers.items()
                                for key, ev in buf if type(ev) is not ClockTick),
                               default=(NEVER, -1))

    @property
    def buffered(self) -> int:
        return sum(len(b) for b in self.buffers.values())


def merged(partitions: list[list], max_jump_ms: int = MAX_JUMP_MS) -> list:
    """Complete partitions (in rank order) merged as the aligner merges them: by (the
    partition's watermark at the event, rank, offset)."""
    keyed = []
    for rank, events in enumerate(partitions):
        wm, suspect = NEVER, None
        for offset, ev in enumerate(events):
            ts = getattr(ev, "ts", None)
            if ts is not None:
                wm, suspect = raised(wm, epoch_ms(ts), suspect, max_jump_ms)
            keyed.append((wm, rank, offset, ev))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]
