"""Duplicate event ids: remembered in two generations, so memory stays bounded.

An id is remembered at least for `window_ms` of event time after it was first seen, or until
`max_ids` newer ids arrived, whichever comes first; then its generation is dropped whole. So
memory never exceeds 2 x max_ids ids, and a duplicate that arrives within the window (the
usual producer retry or redelivery after a restart) has no second effect.

With each id goes a digest of its event's content (a CRC-32 of its msgpack form, not the
event): a true repeat has the same content; an id reused on other content (two channels whose
id spaces collide) is not a repeat, and the router refuses it instead of dropping it unseen.
"""

from __future__ import annotations

import zlib

import msgspec

NEW, REPEAT, REUSED = 0, 1, 2  # what `check` finds

_ENCODE = msgspec.msgpack.Encoder().encode


def digest(ev) -> int:
    """A digest of an event's whole content: equal for true repeats."""
    return zlib.crc32(_ENCODE(ev))


class RecentIds:
    __slots__ = ("window_ms", "max_ids", "current", "previous", "started_ms")

    def __init__(self, window_ms: int, max_ids: int) -> None:
        self.window_ms = window_ms
        self.max_ids = max_ids
        self.current: dict[str, int | None] = {}  # id -> its content's digest
        self.previous: dict[str, int | None] = {}
        self.started_ms: int | None = None

    def check(self, event_id: str, now_ms: int, content: int | None = None) -> int:
        """NEW (and remembers it), REPEAT (same id, same content), or REUSED (same id, other
        content). `content` None: the id alone decides (any repeat of it is a REPEAT)."""
        known = self.current.get(event_id, -1)
        if known == -1:
            known = self.previous.get(event_id, -1)
        if known != -1:
            return REPEAT if known is None or content is None or known == content else REUSED
        if self.started_ms is None:
            self.started_ms = now_ms
        elif now_ms - self.started_ms >= self.window_ms or len(self.current) >= self.max_ids:
            self.previous = self.current
            self.current = {}
            self.started_ms = now_ms
        self.current[event_id] = content
        return NEW

    def seen(self, event_id: str, now_ms: int) -> bool:
        """True for a duplicate id; otherwise remembers the id and returns False."""
        return self.check(event_id, now_ms) != NEW

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def snapshot(self) -> tuple[dict[str, int | None], dict[str, int | None], int | None]:
        return self.current, self.previous, self.started_ms

    def restore(self, current, previous, started_ms: int | None) -> None:
        """From a snapshot; one of an older version has ids only (lists): their content is
        unknown, so any repeat of them is taken as a true one."""
        self.current = current if isinstance(current, dict) else dict.fromkeys(current)
        self.previous = previous if isinstance(previous, dict) else dict.fromkeys(previous)
        self.started_ms = started_ms
