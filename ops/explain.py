"""`stockflow explain`: replay a trace in the pure engine and say how one order was sourced.

Live mode decides as a replay of its recorded input, so replaying what Kafka recorded (the
input topics and the checkout-intake journal, merged as the engine merged them:
connectors/recorded_input.py) explains a live decision; a trace file explains a replay.
The engine runs with an `Explainer` (state/explain.py) watching the one order; its
`order.status` outputs are matched to the sourcings by cause.
"""

from __future__ import annotations

import os
from datetime import datetime

import msgspec

from collections.abc import Iterable, Iterator

from stockflow.connectors.codec import decode_lines
from stockflow.connectors.files import open_trace
from stockflow.connectors.trace_file import read_events
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import Malformed, OrderCreated
from stockflow.state.explain import Explainer, Sourcing
from stockflow.state.outputs import OrderStatus


class ExplainError(Exception):
    """An explanation that cannot be given; the message is one readable line."""


class StatusSeen(msgspec.Struct, kw_only=True, omit_defaults=True):
    status: str
    qty: int
    node: str | None = None
    reason: str | None = None
    cause: str = ""
    event: str = ""  # the type of the cause
    promised_at: datetime | None = None  # units waiting for inbound supply: its ETA


class Step(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One entry of a line's history: a sourcing with the statuses its cause gave the line,
    or a status no sourcing led to (expired, cancelled, shipped...)."""

    event: str  # the type of the input event applied (its `cause`)
    sourcing: Sourcing | None = None
    statuses: list[StatusSeen] = []


class LineHistory(msgspec.Struct, kw_only=True):
    line_id: str
    sku: str
    qty: int
    steps: list[Step]


class Explanation(msgspec.Struct, kw_only=True):
    order_id: str
    events: str  # where the input came from: a trace file, or the recorded topics
    lines: list[LineHistory]


def explain(order_id: str, events: str, config: EngineConfig,
            chunk_lines: int = 2048) -> Explanation:
    """Replays `events` (a JSON Lines file, gzipped if .gz) and explains `order_id`."""
    if not os.path.exists(events):
        raise ExplainError(f"no such events file: {events}")
    if os.path.isdir(events):
        raise ExplainError(f"{events} is a directory, not an events file")
    with open_trace(events) as f:  # no need to replay a trace to learn the order is not there
        if not _mentions(f, order_id):
            raise ExplainError(f"order {order_id} is not in {events}")
    return _explain(order_id, events, read_events(events, chunk_lines), config)


def explain_recorded(order_id: str, messages: list[bytes], where: str, config: EngineConfig,
                     chunk_lines: int = 2048, stamps: list[int] | None = None,
                     max_ahead_s: float = 300.0) -> Explanation:
    """Explains `order_id` from the engine's recorded input (`recorded_input()`: the input
    topics merged, the checkout intakes in their place, each message's record timestamp in
    `stamps`), `where` naming the topics."""
    if not _mentions(messages, order_id):
        raise ExplainError(f"order {order_id} is not in {where}")
    chunks = _chunks(messages, where, chunk_lines, stamps, int(max_ahead_s * 1000))
    return _explain(order_id, where, chunks, config)


def _chunks(messages: list[bytes], where: str, chunk_lines: int, stamps: list[int] | None,
            max_ahead_ms: int) -> Iterator[list]:
    """Recorded Kafka values decoded as the engine's source decodes them (an empty value is
    a message, a dead letter; one stamped too far after its record, `ts_ahead`)."""
    for first in range(0, len(messages), chunk_lines):
        end = first + chunk_lines
        yield decode_lines(messages[first:end], where, first + 1, True,
                           None if stamps is None else stamps[first:end], max_ahead_ms)


def _explain(order_id: str, where: str, chunks: Iterable[list],
             config: EngineConfig) -> Explanation:
    explainer = Explainer(order_id)
    engine = Engine(config, explain=explainer)
    causes: dict[str, tuple[int, str]] = {}  # event id -> (input position, type)
    statuses: list[OrderStatus] = []
    created: OrderCreated | None = None
    for chunk in chunks:
        for event in chunk:
            if type(event) is not Malformed and event.event_id not in causes:
                causes[event.event_id] = (len(causes), event.__struct_config__.tag)
                if created is None and type(event) is OrderCreated and event.order_id == order_id:
                    created = event
        statuses += [o for o in engine.process(chunk)
                     if type(o) is OrderStatus and o.order_id == order_id]
    if created is None:
        raise ExplainError(f"order {order_id} is not in {where}")
    return Explanation(order_id=order_id, events=where,
                       lines=_histories(created, explainer.sourcings, statuses, causes))


def _mentions(messages: Iterable[bytes], order_id: str) -> bool:
    """Whether the order id appears in the messages at all, as JSON would write it."""
    needle = msgspec.json.encode(order_id)
    return any(needle in raw for raw in messages)


def _histories(created: OrderCreated, sourcings: list[Sourcing], statuses: list[OrderStatus],
               causes: dict[str, tuple[int, str]]) -> list[LineHistory]:
    """Each line's sourcings and statuses in the order the engine applied their causes; a
    status follows the last sourcing of its cause."""
    histories = []
    for ol in created.lines:
        entries: list[tuple[tuple[int, int, int], Step | StatusSeen]] = []
        for i, s in enumerate(x for x in sourcings if x.line_id == ol.line_id):
            entries.append(((causes[s.cause][0], 0, i), Step(event=causes[s.cause][1], sourcing=s)))
        for i, o in enumerate(x for x in statuses if x.line_id == ol.line_id):
            event = causes.get(o.cause, (0, ""))[1]
            seen = StatusSeen(status=o.status, qty=o.qty, node=o.node, reason=o.reason,
                              promised_at=o.promised_at,
                              cause=o.cause, event=event)
            entries.append(((causes.get(o.cause, (-1,))[0], 1, i), seen))
        entries.sort(key=lambda e: e[0])
        steps: list[Step] = []
        for _, entry in entries:
            if isinstance(entry, Step):
                steps.append(entry)
            elif steps and _cause(steps[-1]) == entry.cause:
                steps[-1].statuses.append(entry)
            else:
                steps.append(Step(event=entry.event, statuses=[entry]))
        histories.append(LineHistory(line_id=ol.line_id, sku=ol.sku, qty=ol.qty, steps=steps))
    return histories


def _cause(step: Step) -> str:
    return step.sourcing.cause if step.sourcing is not None else step.statuses[0].cause
