"""A simulated ERP and WMS: how the engine's commands would have been answered, in event time.

What-if's closed loop (ops/whatif/closed_loop.py) feeds these answers back to the engine:
- a purchase (`replenishment.requested` without `from_node`) is announced at once as
  `supply.inbound` (kind purchase_order, ETA the supplier's lead time ahead) and received in
  full (`supply.received`) at that ETA;
- a transfer (with `from_node`) is shipped whole (`transfer.shipped`) after a pick delay at
  its source, unless the engine dropped it by then, and received at its destination after the
  transfer lead time;
- an allocation (`dispatch.allocate`) is shipped (`shipment.confirmed`) after a pick delay, net
  of what `dispatch.release` took back of it meanwhile.
Each delay is drawn from a uniform spread around its mean, set per node kind, by a generator
seeded with the run's seed and the command id: a command gets the same delays whatever else
the run asks for, so a run is deterministic and two policies meet the same supplier for the
same command.
"""

from __future__ import annotations

import random
from datetime import timedelta
from hashlib import blake2b
from typing import Annotated, Callable

import msgspec
from msgspec import Meta

from .events import (
    NodeKind,
    ShipmentConfirmed,
    SupplyInbound,
    SupplyReceived,
    TransferShipped,
    epoch_ms,
)
from .outputs import DispatchAllocate, DispatchRelease, ReplenishmentRequested

HOUR, DAY = 3600.0, 86400.0


class Delay(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A delay drawn uniformly from mean_s x (1 - spread) to mean_s x (1 + spread)."""

    mean_s: Annotated[float, Meta(ge=0)]
    spread: Annotated[float, Meta(ge=0, le=1)] = 0.25

    def draw(self, rng: random.Random) -> timedelta:
        """A delay, to the millisecond (the engine's clock unit)."""
        seconds = self.mean_s * (1 + self.spread * (2 * rng.random() - 1))
        return timedelta(milliseconds=round(seconds * 1000))


class ByKind(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A delay, and the node kinds that have their own."""

    default: Delay
    kinds: dict[NodeKind, Delay] = {}

    def of(self, kind: str | None) -> Delay:
        return self.kinds.get(kind, self.default) if kind is not None else self.default


class SupplySideSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seed: int = 1
    # Supplier lead time of a purchase, by the kind of the node it is for.
    purchase_lead: ByKind = ByKind(default=Delay(mean_s=5 * DAY))
    # Request (or allocation) to shipment at the shipping node, by its kind.
    pick: ByKind = ByKind(default=Delay(mean_s=4 * HOUR), kinds={"store": Delay(mean_s=2 * HOUR)})
    # A transfer's shipment to its receipt, by the kind of the receiving node.
    transfer_lead: ByKind = ByKind(default=Delay(mean_s=1.5 * DAY))


class Answer(msgspec.Struct, frozen=True):
    """One event the supply side will send at `ts_ms` (its `ts` field says the same)."""

    ts_ms: int
    event: object  # an input event


Answers = list[Answer]


class SupplySide:
    """Answers the engine's commands; a transfer asks `transfer_open` before it ships."""

    def __init__(self, settings: SupplySideSettings,
                 transfer_open: Callable[[str, str], bool]) -> None:
        self.settings = settings
        self.transfer_open = transfer_open  # (sku, command id) -> the engine still wants it
        self.node_kind: dict[str, str] = {}
        # (order, line, node) -> units allocated there and not shipped or released yet
        self.allocated: dict[tuple[str, str, str], int] = {}

    def _rng(self, command_id: str) -> random.Random:
        return random.Random(f"{self.settings.seed}/{command_id}")

    def answer(self, out) -> Answers:
        """What the ERP or WMS will do about one output of the engine (most need nothing)."""
        t = type(out)
        if t is ReplenishmentRequested:
            return self._purchase(out) if out.from_node is None else self._transfer(out)
        if t is DispatchAllocate:
            key = (out.order_id, out.line_id, out.node)
            self.allocated[key] = self.allocated.get(key, 0) + out.qty
            delay = self.settings.pick.of(self.node_kind.get(out.node))
            ts = out.ts + delay.draw(self._rng(out.command_id))
            return [_at(ShipmentConfirmed(event_id=f"{_sim_id(out.command_id)}/shipped", ts=ts,
                                          order_id=out.order_id, line_id=out.line_id,
                                          sku=out.sku, node=out.node, qty=out.qty))]
        if t is DispatchRelease:
            key = (out.order_id, out.line_id, out.node)
            left = self.allocated.get(key, 0) - out.qty
            if left > 0:
                self.allocated[key] = left
            else:
                self.allocated.pop(key, None)
        return []

    def due(self, answer: Answer) -> tuple[object | None, Answers]:
        """The answer as it goes out when its time comes (None where nothing is left to
        send: all of an allocation released, a transfer the engine dropped), and what it
        sets going for later (a shipped transfer's receipt)."""
        ev = answer.event
        t = type(ev)
        if t is ShipmentConfirmed:
            key = (ev.order_id, ev.line_id, ev.node)
            qty = min(ev.qty, self.allocated.get(key, 0))
            if qty <= 0:
                return None, []
            left = self.allocated[key] - qty
            if left > 0:
                self.allocated[key] = left
            else:
                del self.allocated[key]
            return (ev if qty == ev.qty else msgspec.structs.replace(ev, qty=qty)), []
        if t is TransferShipped:
            if not self.transfer_open(ev.sku, ev.command_id):
                return None, []
            delay = self.settings.transfer_lead.of(self.node_kind.get(ev.to_node))
            ts = ev.ts + delay.draw(self._rng(ev.command_id + "/receipt"))
            receipt = SupplyReceived(event_id=f"{_sim_id(ev.command_id)}/received", ts=ts,
                                     supply_id=ev.command_id, sku=ev.sku, node=ev.to_node,
                                     qty=ev.qty)
            return ev, [_at(receipt)]
        return ev, []

    def _purchase(self, out: ReplenishmentRequested) -> Answers:
        delay = self.settings.purchase_lead.of(self.node_kind.get(out.node))
        eta = out.ts + delay.draw(self._rng(out.command_id))
        inbound = SupplyInbound(event_id=f"{_sim_id(out.command_id)}/inbound", ts=out.ts,
                                supply_id=out.command_id, sku=out.sku, node=out.node,
                                qty=out.qty, eta=eta, kind="purchase_order")
        received = SupplyReceived(event_id=f"{_sim_id(out.command_id)}/received", ts=eta,
                                  supply_id=out.command_id, sku=out.sku, node=out.node,
                                  qty=out.qty)
        return [_at(inbound), _at(received)]

    def _transfer(self, out: ReplenishmentRequested) -> Answers:
        delay = self.settings.pick.of(self.node_kind.get(out.from_node))
        ts = out.ts + delay.draw(self._rng(out.command_id))
        return [_at(TransferShipped(event_id=f"{_sim_id(out.command_id)}/shipped", ts=ts,
                                    command_id=out.command_id, sku=out.sku,
                                    from_node=out.from_node, to_node=out.node, qty=out.qty))]


def _at(ev) -> Answer:
    return Answer(epoch_ms(ev.ts), ev)


def _sim_id(command_id: str) -> str:
    """The answers' event ids: `sim-` and a digest of the command id, so that a command
    caused by an answer does not carry every id before it."""
    return "sim-" + blake2b(command_id.encode(), digest_size=8).hexdigest()
