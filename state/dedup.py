"""Duplicate event ids: remembered in two generations, so memory stays bounded.

An id is remembered at least for `window_ms` of event time after it was first seen, or until
`max_ids` newer ids arrived, whichever comes first; then its generation is dropped whole. So
memory never exceeds 2 x max_ids ids, and a duplicate that arrives within the window (the
usual producer retry or redelivery after a restart) has no second effect.
"""

from __future__ import annotations


class RecentIds:
    __slots__ = ("window_ms", "max_ids", "current", "previous", "started_ms")

    def __init__(self, window_ms: int, max_ids: int) -> None:
        self.window_ms = window_ms
        self.max_ids = max_ids
        self.current: set[str] = set()
        self.previous: set[str] = set()
        self.started_ms: int | None = None

    def seen(self, event_id: str, now_ms: int) -> bool:
        """True for a duplicate; otherwise remembers the id and returns False."""
        if event_id in self.current or event_id in self.previous:
            return True
        if self.started_ms is None:
            self.started_ms = now_ms
        elif now_ms - self.started_ms >= self.window_ms or len(self.current) >= self.max_ids:
            self.previous = self.current
            self.current = set()
            self.started_ms = now_ms
        self.current.add(event_id)
        return False

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def snapshot(self) -> tuple[list[str], list[str], int | None]:
        return list(self.current), list(self.previous), self.started_ms

    def restore(self, current: list[str], previous: list[str], started_ms: int | None) -> None:
        self.current, self.previous, self.started_ms = set(current), set(previous), started_ms
