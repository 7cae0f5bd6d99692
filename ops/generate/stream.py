"""The trace in event-time order: the opening, then the arrival processes merged in time.

The opening is the master data at t0 (nodes, channels, policies) and a count of every SKU at
each of its nodes at t0 + 60 s. Then orders, flash-sale orders and supply ticks arrive, each
process over its own window, with the follow-ups they plan in between. Any line after the
master data may be re-sent as an exact duplicate right after, and may be followed by a
malformed line.
"""

from __future__ import annotations

from itertools import chain
from typing import BinaryIO, Iterator

from stockflow.state import events as ev

from .lines import ORDER_UP_TO_NULL, SUPPLY_NULL, WOS_WEEKS_NULL, LineWriter
from .malformed import Malformed
from .orders import Orders
from .plan import Plan
from .scenario import P_DUP, SNAPSHOT_MS, Scenario
from .schedule import ARRIVALS, FOLLOW_UP, ORDER, SPIKE_ORDER, SUPPLY, Schedule
from .supply import Supply


def generate(scenario: Scenario) -> Iterator[bytes]:
    """Yields one JSON line (bytes, no trailing newline) per message, in event-time order.
    Raises ValueError (at once) when the scenario cannot be generated."""
    return _Trace(Plan(scenario)).lines()


def write_jsonl(scenario: Scenario, out: BinaryIO, on_written=None) -> int:
    """Writes the lines with b"\\n" separators; returns the count written. `on_written(n)`
    hears of every block of lines written (progress)."""
    n = 0
    buf: list[bytes] = []
    write = out.write
    for line in generate(scenario):
        buf.append(line)
        if len(buf) >= 4096:
            write(b"\n".join(buf) + b"\n")
            n += len(buf)
            if on_written is not None:
                on_written(len(buf))
            buf.clear()
    if buf:
        write(b"\n".join(buf) + b"\n")
        n += len(buf)
        if on_written is not None:
            on_written(len(buf))
    return n


class _Trace:
    """One trace: the parts that make its lines share the plan's random generator, the
    event ids and times (`LineWriter`) and what is planned ahead (`Schedule`)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.writer = LineWriter()
        self.schedule = Schedule(plan.rng, plan.budget)
        self.orders = Orders(plan, self.writer, self.schedule)
        self.supply = Supply(plan, self.writer, self.schedule)
        self.malformed = Malformed(plan, self.writer, self.orders.numbers)  # draws a number
        self.sku_index = {sku: s for s, sku in enumerate(plan.sku_ids)}
        self.node_index = {n.id: i for i, n in enumerate(plan.nodes)}

    def lines(self) -> Iterator[bytes]:
        # chained, not `yield from`: a line passes one generator fewer
        return chain(self._master_data(), self._opening_counts(), self._arrivals())

    def _master_data(self) -> Iterator[bytes]:
        """Nodes, channels and replenishment policies, all at t0."""
        plan, next_event, line = self.plan, self.writer.next_event, self.writer.line
        for node in plan.nodes:
            event_id, ts = next_event(0)
            yield line(ev.NodeUpserted(event_id=event_id, ts=ts, node=node))
        for channel in plan.channels:
            event_id, ts = next_event(0)
            yield line(ev.ChannelUpserted(event_id=event_id, ts=ts, channel=channel),
                       (WOS_WEEKS_NULL if channel.wos_weeks is None else ()) + SUPPLY_NULL)
        for s, d, safety, rop in plan.policies:
            event_id, ts = next_event(0)
            yield line(ev.PolicyUpserted(event_id=event_id, ts=ts, sku=plan.sku_ids[s],
                                         node=plan.nodes[d].id, safety_stock=safety,
                                         reorder_point=rop),
                       ORDER_UP_TO_NULL)

    def _opening_counts(self) -> Iterator[bytes]:
        """A count of every SKU at its DCs and extra nodes, all at t0 + 60 s."""
        plan, malformed = self.plan, self.malformed
        next_event, line = self.writer.next_event, self.writer.line
        rnd, pacing = plan.rng.random, malformed.active
        on_hand, seq, nn = plan.stock.on_hand, plan.stock.seq, plan.n_nodes
        node_ids = [n.id for n in plan.nodes]
        dcs = list(range(plan.n_dc))
        for s, sku in enumerate(plan.sku_ids):
            for node in dcs + plan.extra_nodes[s]:
                key = s * nn + node
                event_id, ts = next_event(SNAPSHOT_MS)
                count = line(ev.StockSnapshot(event_id=event_id, ts=ts, sku=sku,
                                              node=node_ids[node], on_hand=on_hand[key],
                                              seq=seq[key]))
                yield count
                if rnd() < P_DUP:
                    yield count
                if pacing and malformed.due():
                    yield malformed.line(SNAPSHOT_MS)

    def _arrivals(self) -> Iterator[bytes]:
        """Orders, flash-sale orders and supply ticks merged in time with their follow-ups."""
        rnd = self.plan.rng.random
        schedule, malformed = self.schedule, self.malformed
        next_event, write = self.writer.next_event, self.writer.line
        pacing = malformed.active
        order, tick, arrival = self.orders.order, self.supply.tick, schedule.arrival
        put_away, sku_index, node_index = self.plan.stock.put_away, self.sku_index, self.node_index
        for kind in ARRIVALS:
            arrival(kind)
        for t, _, what, a, b, c in schedule.due():
            if what == ORDER:
                line = order(t, False)
                arrival(ORDER)
            elif what == FOLLOW_UP:  # a, b, c: the event's type, fields and nulls
                if a is ev.SupplyReceived or (a is ev.OrderReturned and b["restock"]):
                    put_away(sku_index[b["sku"]], node_index[b["node"]], b["qty"])
                event_id, ts = next_event(t)
                line = write(a(event_id=event_id, ts=ts, **b), c)
            elif what == SPIKE_ORDER:
                line = order(t, True)
                arrival(SPIKE_ORDER)
            elif what == SUPPLY:
                line = tick(t)
                arrival(SUPPLY)
            else:  # DUPLICATE: a line already sent, sent again
                yield a
                continue
            yield line
            if rnd() < P_DUP:
                schedule.duplicate(t, line)
            if pacing and malformed.due():
                yield malformed.line(t)
