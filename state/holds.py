"""Holds: the second-level locks an unpaid order takes, and when they end.

An unpaid line is held at its node(s) until `created + channel.hold_ttl_s`. Payment turns
the holds into allocations; the deadline passing (on the engine's clock) expires them, and a
payment after that tries a fresh allocation. `HoldDeadlines` is the schedule of deadlines;
the ledger applies `pay_line` and `expire_line` to the lines themselves.
"""

from __future__ import annotations

import heapq

from .context import Ctx
from .events import Channel
from .lines import ALLOCATED, BACKORDERED, EXPIRED, HELD, REVIVABLE, Line
from .placement import place_or_queue, release_all


def hold_deadline(created_clock_ms: int, channel: Channel) -> int:
    """When an unpaid order's holds end: its creation on the engine's clock plus its channel's
    hold life. The router schedules this and the ledger stamps lines with it, so they agree."""
    return created_clock_ms + int(channel.hold_ttl_s * 1000)


def pay_line(ctx: Ctx, line: Line) -> None:
    """Payment: holds become allocations; an expired or rejected line tries again."""
    was_paid, line.paid = line.paid, True
    line.deadline_ms = None
    if line.status == HELD:
        ctx.book.convert_to_allocation(line)
        for node, qty in line.parts.items():
            ctx.emit.allocate(line, ctx.sku, node, qty)
            ctx.emit.status(line, ctx.sku, ALLOCATED, qty, node)
    elif line.status in REVIVABLE and not was_paid:
        place_or_queue(ctx, line, "revived_by_payment")


def expire_line(ctx: Ctx, line: Line) -> None:
    """The hold window passed unpaid: give the units back, the line is expired."""
    if line.paid or line.status not in (HELD, BACKORDERED):
        return
    if line.status == HELD:
        release_all(ctx, line, "expired")
    else:
        ctx.book.dequeue(line)
    line.status = EXPIRED
    ctx.emit.status(line, ctx.sku, EXPIRED, line.qty, reason="hold_expired")


class HoldDeadlines:
    """Deadlines of unpaid orders, soonest first. Paid or cancelled orders drop out lazily."""

    __slots__ = ("_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._live: dict[str, int] = {}  # order_id -> its deadline while unpaid

    def schedule(self, order_id: str, deadline_ms: int) -> None:
        self._live[order_id] = deadline_ms
        heapq.heappush(self._heap, (deadline_ms, order_id))

    def drop(self, order_id: str) -> None:
        """The order was paid or cancelled: its deadline no longer matters."""
        self._live.pop(order_id, None)

    def due(self, now_ms: int) -> list[str]:
        """Orders whose deadline is at or before `now_ms`, in deadline order; removes them."""
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            deadline, order_id = heapq.heappop(heap)
            if self._live.get(order_id) == deadline:
                del self._live[order_id]
                due.append(order_id)
        return due

    def __len__(self) -> int:
        return len(self._live)

    def snapshot(self) -> tuple[list[tuple[int, str]], dict[str, int]]:
        """The heap as it is (equal deadlines then come due in the same order after a
        restore) and the live deadlines."""
        return self._heap, self._live

    @classmethod
    def restore(cls, heap: list, live: dict[str, int]) -> "HoldDeadlines":
        deadlines = cls()
        deadlines._heap = [(deadline, order_id) for deadline, order_id in heap]
        deadlines._live = live
        return deadlines
