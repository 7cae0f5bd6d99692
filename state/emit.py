"""Builds the outputs of one input event: every output names its cause and event time.

Command ids are derived from the cause and what the command says, so processing the same
input again yields the same ids.

One input event may reach a bucket as several work items (expiries the clock brought, then
the event itself), and a line's holds may move more than once under it. Its `held` statuses
are therefore sent once the cause is done, one per node it is still held at: together they
are the line's whole set of holds from then on, as the contract says.
"""

from __future__ import annotations

from datetime import datetime

from .lines import ALLOCATED, HELD, Line
from .outputs import (
    Alert,
    AvailabilityChanged,
    DispatchAllocate,
    DispatchRelease,
    OrderStatus,
    OutputEvent,
    ReplenishmentRequested,
)
from .supply_policy import datetime_of


class Emitter:
    """Collects outputs for the cause currently being processed."""

    __slots__ = ("out", "cause", "ts", "_ids", "_holds", "oversold", "settled")

    def __init__(self) -> None:
        self.out: list[OutputEvent] = []
        self.oversold: dict[str, int] = {}  # channel -> paid lines rejected (for metrics)
        self.settled = 0  # checkout holds taken over by their orders (for metrics)
        self.cause = ""
        self.ts: datetime | None = None
        self._ids: set[str] = set()  # command ids given under the current cause
        # Lines whose holds moved under this cause, with the reason the first move gave
        self._holds: dict[tuple, tuple[str, Line, str | None]] = {}

    def set_cause(self, event_id: str, ts: datetime) -> None:
        """The next work item's cause; a new cause ends the one before."""
        if event_id != self.cause:
            self.end_cause()
            self.cause = event_id
        self.ts = ts

    def end_cause(self) -> None:
        """The current cause is done: its lines' hold sets go out, its command ids close."""
        if self._holds:
            for sku, line, reason in self._holds.values():
                if line.status == HELD:
                    for node, qty in line.parts.items():
                        self.status(line, sku, HELD, qty, node, reason)
            self._holds.clear()
        self._ids.clear()
        self.cause = ""

    def _command_id(self, what: str) -> str:
        """`<cause>/<what>`, numbered if one cause issues the same command twice."""
        command_id = f"{self.cause}/{what}"
        n = 1
        while command_id in self._ids:
            n += 1
            command_id = f"{self.cause}/{what}#{n}"
        self._ids.add(command_id)
        return command_id

    def drain(self) -> list[OutputEvent]:
        self.end_cause()
        out, self.out = self.out, []
        return out

    def holds(self, line: Line, sku: str, reason: str | None = None) -> None:
        """The line's set of holds changed: its `held` statuses go out when the cause ends,
        saying why the first change of this cause was made (the one a consumer has not seen)."""
        key = (sku, line.order_id, line.line_id)
        if key not in self._holds:
            self._holds[key] = (sku, line, reason)

    def status(
        self, line: Line, sku: str, status: str, qty: int,
        node: str | None = None, reason: str | None = None,
    ) -> None:
        if status == "rejected" and line.paid:
            self.oversold[line.channel] = self.oversold.get(line.channel, 0) + 1
        promised_at = None
        if line.promised is not None and (status == HELD or status == ALLOCATED):
            eta_ms = line.promised.get(node)
            if eta_ms is not None:
                promised_at = datetime_of(eta_ms)
        self.out.append(OrderStatus(
            ts=self.ts, cause=self.cause, order_id=line.order_id, line_id=line.line_id,
            sku=sku, status=status, qty=qty, node=node, reason=reason, paid=line.paid,
            promised_at=promised_at,
        ))

    def allocate(self, line: Line, sku: str, node: str, qty: int) -> None:
        self.out.append(DispatchAllocate(
            ts=self.ts, cause=self.cause,
            command_id=self._command_id(f"allocate/{line.order_id}/{line.line_id}/{node}"),
            order_id=line.order_id, line_id=line.line_id, sku=sku, node=node, qty=qty,
            channel=line.channel,
        ))

    def release(self, line: Line, sku: str, node: str, qty: int, reason: str) -> None:
        self.out.append(DispatchRelease(
            ts=self.ts, cause=self.cause,
            command_id=self._command_id(f"release/{line.order_id}/{line.line_id}/{node}"),
            order_id=line.order_id, line_id=line.line_id, sku=sku, node=node, qty=qty,
            reason=reason,
        ))

    def replenish(self, sku: str, node: str, qty: int, from_node: str | None, reason: str) -> str:
        """A replenishment request; returns its command id (a transfer is kept under it)."""
        command_id = self._command_id(f"replenish/{sku}/{node}")
        self.out.append(ReplenishmentRequested(
            ts=self.ts, cause=self.cause, command_id=command_id,
            sku=sku, node=node, qty=qty, from_node=from_node, reason=reason,
        ))
        return command_id

    def alert(self, kind: str, sku: str, detail: str, node: str | None = None,
              transfer: str | None = None, channel: str | None = None) -> None:
        self.out.append(Alert(
            ts=self.ts, cause=self.cause, kind=kind, sku=sku, node=node, detail=detail,
            transfer=transfer, channel=channel,
        ))

    def availability(
        self, sku: str, channel: str, available: int, max_line_qty: int, cause: str, ts: datetime,
    ) -> None:
        self.out.append(AvailabilityChanged(
            ts=ts, cause=cause, sku=sku, channel=channel, available=available,
            max_line_qty=max_line_qty,
        ))
