"""A trace replayed in closed loop: the engine's commands answered by a simulated supply side.

The engine runs in this process (`state.engine.Engine`), one event at a time. Every command
it issues is handed to the supply side (`state.supply_side`), whose answers are merged into
the input in event-time order: an answer due by the next trace event goes before it (ties:
the answer first). The input as it was applied, the trace's events and the answers in that
order, is written out: `stockflow replay` of that file makes the same decisions, and
`inspect` and `explain` read it like any trace.

What the supply side answers, the trace no longer says: its shipments and transfer events
are left out (they answered the recorded engine's commands), and so are its counts after a
SKU x node's first (they count a world the loop has changed). `supply` "recorded" keeps the
trace's own inbound and receipts; "simulated" leaves them out too, so that all supply comes
from the engine's requests. Answers due after the trace's last event are not sent.
"""

from __future__ import annotations

import heapq
from itertools import count
from typing import BinaryIO, Literal

import msgspec

from stockflow.connectors.codec import decode_lines
from stockflow.connectors.files import open_trace
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import (
    Malformed,
    NodeUpserted,
    ShipmentConfirmed,
    StockSnapshot,
    SupplyInbound,
    SupplyReceived,
    TransferCancelled,
    TransferShipped,
    epoch_ms,
)
from stockflow.state.outputs import OutputEvent
from stockflow.state.supply_side import Answer, SupplySide, SupplySideSettings

SupplyMode = Literal["recorded", "simulated"]
_ENCODE = msgspec.json.Encoder().encode
_ANSWERED = (ShipmentConfirmed, TransferShipped, TransferCancelled)  # the supply side's now


class LoopCounts(msgspec.Struct, kw_only=True):
    trace_events: int = 0  # trace lines applied
    left_out: int = 0  # trace events the supply side speaks for instead
    answers: int = 0  # simulated events applied


def close_loop(trace: str, out: BinaryIO, config: EngineConfig, settings: SupplySideSettings,
               supply: SupplyMode = "recorded",
               outputs: list[OutputEvent] | None = None) -> LoopCounts:
    """Runs the loop over `trace`, writing the input as applied to `out`; the engine's
    outputs are appended to `outputs` when given."""
    engine = Engine(config)

    def transfer_open(sku: str, command_id: str) -> bool:
        book = engine.ledger(engine.router.bucket(sku)).books.get(sku)
        transfer = None if book is None else book.transfer(command_id)
        return transfer is not None and not transfer.shipped

    side = SupplySide(settings, transfer_open)
    pending: list[tuple[int, int, Answer]] = []  # (due ms, order made, answer)
    order = count()
    counts = LoopCounts()
    keep = _TraceFilter(supply)

    def apply(ev, line: bytes) -> None:
        out.write(line)
        if type(ev) is NodeUpserted:
            side.node_kind[ev.node.id] = ev.node.kind
        produced = engine.process([ev])
        if outputs is not None:
            outputs.extend(produced)
        for output in produced:
            for answer in side.answer(output):
                heapq.heappush(pending, (answer.ts_ms, next(order), answer))

    def send_due(until_ms: int) -> None:
        while pending and pending[0][0] <= until_ms:
            _, _, answer = heapq.heappop(pending)
            ev, later = side.due(answer)
            for follow in later:
                heapq.heappush(pending, (follow.ts_ms, next(order), follow))
            if ev is not None:
                counts.answers += 1
                apply(ev, _ENCODE(ev) + b"\n")

    last_ms = None
    with open_trace(trace) as f:
        for n, raw in enumerate(f, start=1):
            decoded = decode_lines([raw], "trace", n)
            if not decoded:
                continue  # a blank line
            ev = decoded[0]
            if not keep(ev):
                counts.left_out += 1
                continue
            if type(ev) is not Malformed:
                ts_ms = epoch_ms(ev.ts)
                last_ms = ts_ms if last_ms is None else max(last_ms, ts_ms)
                send_due(ts_ms)
            counts.trace_events += 1
            apply(ev, raw if raw.endswith(b"\n") else raw + b"\n")
    if last_ms is not None:
        send_due(last_ms)
    return counts


class _TraceFilter:
    """Which trace events stay in the loop (see the module's doc)."""

    def __init__(self, supply: SupplyMode) -> None:
        self.simulated = supply == "simulated"
        self.counted: set[tuple[str, str]] = set()
        self.announced: set[str] = set()  # the trace's own inbound supply ids

    def __call__(self, ev) -> bool:
        t = type(ev)
        if t in _ANSWERED:
            return False
        if t is StockSnapshot:
            key = (ev.sku, ev.node)
            if key in self.counted:
                return False
            self.counted.add(key)
            return True
        if t is SupplyInbound:
            if self.simulated:
                return False
            self.announced.add(ev.supply_id)
            return True
        if t is SupplyReceived:
            return not self.simulated and ev.supply_id in self.announced
        return True
