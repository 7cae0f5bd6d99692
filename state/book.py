"""The book of one SKU: its positions at every node, its order lines, its backorder queue."""

from __future__ import annotations

import bisect
import sys

import msgspec

from .lines import ALLOCATED, HELD, Line
from .position import Position
from .quarantine import Quarantine
from .rebalancing import RegionDemand
from .slow_movers import Sales
from .transfers import Transfer
from .wos import ChannelRate

NOTHING_KEPT_OUT: dict[str, int] = {}  # what `kept_out` gives almost every book; never changed


class SkuBook(msgspec.Struct, array_like=True, gc=False):  # no cycles: see position.py
    positions: dict[str, Position] = {}
    lines: dict[str, dict[str, Line]] = {}  # order_id -> line_id -> line
    # Backorder queues, one per line shape (channel, fulfillment, pickup node), each FIFO by
    # seq: lines of one shape compete for the same nodes, so a shape that cannot fill a
    # one-unit line is skipped whole instead of walked line by line.
    backorders: dict[str, list[tuple[int, str, str]]] = {}  # shape -> [(seq, order_id, line_id)]
    published: dict[str, int] = {}  # channel -> availability last emitted
    checkouts: dict[str, int] = {}  # hold_id -> expiry (ms): checkout holds placed here
    # channel -> max_line_qty last emitted; last, so snapshots taken before it still restore
    published_line: dict[str, int] = {}
    # node -> a count the snapshot guard holds back (quarantine.py). None, not an empty dict,
    # for almost every SKU: it costs a pointer, and a byte in snapshots taken after it.
    quarantined: dict[str, Quarantine] | None = None
    # Units ordered per day, for the slow-mover rule (slow_movers.py); None until the SKU
    # sells, and again once it sold nothing for both windows.
    sales: Sales | None = None
    # Transfers asked for or shipped and not yet received, by command id (transfers.py);
    # None for almost every SKU, as `quarantined`.
    transfers: dict[str, Transfer] | None = None
    # Units ordered per day and region, for rebalancing (rebalancing.py); None while it is
    # off, and until the SKU sells.
    demand: RegionDemand | None = None
    # channel -> its demand and what was sold away from its protection (wos.py), for
    # channels with `wos_weeks` that order the SKU; None for every other SKU.
    wos: dict[str, ChannelRate] | None = None
    # region -> its customers' demand for the SKU (regional_reserve.py), while the regional
    # reserve is on; None for every SKU while it is off.
    regions: dict[str, ChannelRate] | None = None
    # The number (`CheckoutTaken.n`) of the last checkout intake applied to this SKU: one
    # taken in again (a journal read twice, a rerun after a restart) is not applied twice.
    intake_n: int = 0
    # node -> order_id -> how many of its lines hold or have allocated units there: the lines
    # a node's promise dates are worked out for (promises.py), without walking every line
    # kept. Last, so snapshots taken before it still restore (counted again from the lines).
    open_at: dict[str, dict[str, int]] = {}
    # node -> order_id -> how many of its lines there wait for inbound (a `promised` ETA):
    # where every line promised for now still fits, only these are dated again.
    waiting_at: dict[str, dict[str, int]] = {}

    def position(self, node: str) -> Position:
        pos = self.positions.get(node)
        if pos is None:
            pos = self.positions[sys.intern(node)] = Position()  # one copy of each node id
        return pos

    def line(self, order_id: str, line_id: str) -> Line | None:
        lines = self.lines.get(order_id)
        return None if lines is None else lines.get(line_id)

    def add_line(self, line: Line) -> None:
        self.lines.setdefault(line.order_id, {})[line.line_id] = line

    # -- counts held back by the snapshot guard -----------------------------------------

    def quarantine_at(self, node: str) -> Quarantine | None:
        return None if self.quarantined is None else self.quarantined.get(node)

    def quarantine(self, node: str, held: Quarantine) -> None:
        if self.quarantined is None:
            self.quarantined = {}
        self.quarantined[node] = held

    def lift(self, node: str) -> Quarantine | None:
        """The count held back at `node` is decided (approved, rejected) or superseded; returns it."""
        held = None if self.quarantined is None else self.quarantined.pop(node, None)
        if held is not None and not self.quarantined:
            self.quarantined = None
        return held

    def kept_out(self) -> dict[str, int]:
        """node -> units kept out of ATP there because a lower count is held back. Every ATP
        that new holds and allocations are made from, or that channels are told, is net of
        it: if the lower count is true, nothing new is oversold."""
        if self.quarantined is None:
            return NOTHING_KEPT_OUT
        return {node: held.kept_out for node, held in self.quarantined.items()}

    # -- transfers ----------------------------------------------------------------------

    def transfer(self, command_id: str) -> Transfer | None:
        return None if self.transfers is None else self.transfers.get(command_id)

    def add_transfer(self, command_id: str, transfer: Transfer) -> None:
        if self.transfers is None:
            self.transfers = {}
        self.transfers[command_id] = transfer

    def end_transfer(self, command_id: str) -> None:
        if self.transfers is not None:
            self.transfers.pop(command_id, None)
            if not self.transfers:
                self.transfers = None

    # -- commitments: every change of held/allocated units goes through these two -------

    def commit(self, line: Line, node: str, qty: int) -> None:
        """Hold or allocate (by the line's status) `qty` units of the line at `node`."""
        pos = self.position(node)
        if line.status == HELD:
            pos.held += qty
        else:
            pos.allocated += qty
        if node not in line.parts:
            _count(self.open_at, node, line.order_id)
        line.parts[node] = line.parts.get(node, 0) + qty
        if line.promised is not None and node in line.promised:
            pos.waiting += qty

    def uncommit(self, line: Line, node: str, qty: int) -> None:
        """Give back `qty` of the line's units at `node`."""
        pos = self.positions[node]
        if line.status == HELD:
            pos.held -= qty
        else:
            pos.allocated -= qty
        if line.promised is not None and node in line.promised:
            pos.waiting -= qty
        left = line.parts[node] - qty
        if left:
            line.parts[node] = left
        else:
            del line.parts[node]
            if line.promised is not None and node in line.promised:
                line.promise(node, None)
                _uncount(self.waiting_at, node, line.order_id)
            _uncount(self.open_at, node, line.order_id)

    def count_open(self) -> None:
        """Count every node's waiting units and the open orders again from the lines (a
        snapshot written before they were kept restores with none)."""
        for pos in self.positions.values():
            pos.waiting = 0
        self.open_at = {}
        self.waiting_at = {}
        for order_id, lines in self.lines.items():
            for line in lines.values():
                for node in line.parts:
                    _count(self.open_at, node, order_id)
                if line.promised is not None:
                    for node in line.promised:
                        self.positions[node].waiting += line.parts.get(node, 0)
                        _count(self.waiting_at, node, order_id)

    def open_lines(self, node: str) -> list[Line]:
        """The lines that hold or have allocated units at `node`."""
        lines = self.lines
        return [line for order_id in self.open_at.get(node, ())
                for line in lines[order_id].values() if node in line.parts]

    def waiting_lines(self, node: str) -> list[Line]:
        """The lines whose units at `node` wait for inbound."""
        lines = self.lines
        return [line for order_id in self.waiting_at.get(node, ())
                for line in lines[order_id].values()
                if line.promised is not None and node in line.promised]

    def promise(self, line: Line, node: str, eta_ms: int | None) -> None:
        """The line's units at `node` wait for inbound due at `eta_ms` (None: on hand gives
        them now); the node counts the units waiting (`Position.waiting`)."""
        was = line.promised is not None and node in line.promised
        if was != (eta_ms is not None):
            units = line.parts.get(node, 0)
            if eta_ms is not None:
                self.position(node).waiting += units
                _count(self.waiting_at, node, line.order_id)
            else:
                self.position(node).waiting -= units
                _uncount(self.waiting_at, node, line.order_id)
        line.promise(node, eta_ms)

    def convert_to_allocation(self, line: Line) -> None:
        """A paid held line: its holds become allocations at the same nodes."""
        for node, qty in line.parts.items():
            pos = self.positions[node]
            pos.held -= qty
            pos.allocated += qty
        line.status = ALLOCATED

    # -- backorder queue ----------------------------------------------------------------

    def enqueue(self, line: Line) -> None:
        queue = self.backorders.setdefault(shape_of(line), [])
        bisect.insort(queue, (line.seq, line.order_id, line.line_id))

    def dequeue(self, line: Line) -> None:
        shape = shape_of(line)
        queue = self.backorders.get(shape)
        if queue is None:
            return
        entry = (line.seq, line.order_id, line.line_id)
        i = bisect.bisect_left(queue, entry)
        if i < len(queue) and queue[i] == entry:
            del queue[i]
            if not queue:
                del self.backorders[shape]


def shape_of(line: Line) -> str:
    """Lines of one shape can be filled from exactly the same nodes."""
    return f"{line.channel}|{line.fulfillment}|{line.pickup_node or ''}"


def _count(index: dict[str, dict[str, int]], node: str, order_id: str) -> None:
    """One more of the order's lines in `index` at `node` (`open_at`, `waiting_at`)."""
    orders = index.setdefault(node, {})
    orders[order_id] = orders.get(order_id, 0) + 1


def _uncount(index: dict[str, dict[str, int]], node: str, order_id: str) -> None:
    orders = index[node]
    if orders[order_id] > 1:
        orders[order_id] -= 1
    else:
        del orders[order_id]
        if not orders:
            del index[node]
