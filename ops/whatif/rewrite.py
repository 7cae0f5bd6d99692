"""A recorded trace as it would have been under a policy: its master events overridden.

Only the events a policy changes are re-encoded; every other line (malformed ones too) is
written as recorded, so the engine sees the same input otherwise, in the same order.
"""

from __future__ import annotations

from typing import BinaryIO

import msgspec

from stockflow.connectors.files import open_trace
from stockflow.state.events import (
    ChannelUpserted,
    InputEvent,
    NodeUpserted,
    OrderReturned,
    PolicyUpserted,
    ShipmentConfirmed,
    StockAdjusted,
    StockSnapshot,
    SupplyInbound,
    SupplyReceived,
)

from .policy import Policy

_DECODE = msgspec.json.Decoder(InputEvent).decode
_ENCODE = msgspec.json.Encoder().encode

# Events that stock a SKU at a node: where a default safety stock has something to guard.
_STOCKED = (StockSnapshot, StockAdjusted, SupplyInbound, SupplyReceived, ShipmentConfirmed,
            OrderReturned)


class TraceFacts(msgspec.Struct):
    """What a policy is checked against: the trace's channels, nodes, and the SKU x nodes
    its own `policy.upserted` events cover."""

    channels: set[str]
    nodes: set[str]
    policies: set[tuple[str, str]]


def read_facts(trace: str) -> TraceFacts:
    facts = TraceFacts(set(), set(), set())
    for _, ev in _events(trace):
        if type(ev) is ChannelUpserted:
            facts.channels.add(ev.channel.id)
        elif type(ev) is NodeUpserted:
            facts.nodes.add(ev.node.id)
        elif type(ev) is PolicyUpserted:
            facts.policies.add((ev.sku, ev.node))
    return facts


def rewrite(trace: str, policy: Policy, facts: TraceFacts, out: BinaryIO) -> int:
    """Writes the trace under `policy` to `out`; returns how many events were changed or
    added."""
    changed = 0
    default = policy.safety_stock.default
    points = policy.replenishment
    defaults = default is not None or points.reorder_point is not None
    guarded: set[tuple[str, str]] = set(facts.policies)  # SKU x nodes with a policy
    for raw, ev in _events(trace):
        new = _override(ev, policy) if ev is not None else None
        if defaults and isinstance(ev, _STOCKED) and (ev.sku, ev.node) not in guarded:
            guarded.add((ev.sku, ev.node))
            # the id names what the policy gives (a safety stock only: as it always was)
            what = "safety-stock" if points.reorder_point is None else "policy"
            out.write(_ENCODE(PolicyUpserted(
                event_id=f"whatif-{what}/{ev.sku}/{ev.node}", ts=ev.ts, sku=ev.sku,
                node=ev.node, safety_stock=default or 0, reorder_point=points.reorder_point,
                order_up_to=points.order_up_to)) + b"\n")
            changed += 1
        if new is None:
            out.write(raw if raw.endswith(b"\n") else raw + b"\n")
        else:
            out.write(_ENCODE(new) + b"\n")
            changed += 1
    return changed


def _override(ev, policy: Policy):
    """The event as the policy has it, or None where it leaves the event as recorded."""
    kind = type(ev)
    if kind is ChannelUpserted:
        changes = {}
        for key in ("*", ev.channel.id):  # a channel's own table over the one for all
            override = policy.channels.get(key)
            if override is not None:
                changes.update(_given(override))
        if changes:
            return msgspec.structs.replace(
                ev, channel=msgspec.structs.replace(ev.channel, **changes))
    elif kind is NodeUpserted:
        override = policy.nodes.get(ev.node.id)
        if override is not None and _given(override):
            return msgspec.structs.replace(
                ev, node=msgspec.structs.replace(ev.node, **_given(override)))
    elif kind is PolicyUpserted and policy.safety_stock.scale != 1.0:
        scaled = int(ev.safety_stock * policy.safety_stock.scale + 0.5)  # half up
        return msgspec.structs.replace(ev, safety_stock=scaled)
    return None


def _given(override: msgspec.Struct) -> dict:
    return {f: v for f in override.__struct_fields__
            if (v := getattr(override, f)) is not None}


def _events(trace: str):
    """(raw line, event) for every line of the trace; the event is None where it does not
    decode (the engine makes it a dead letter)."""
    with open_trace(trace) as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                yield raw, _DECODE(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                yield raw, None
