"""The auditor's side of transfers, from inputs and outputs only (see `invariants.py`).

A `replenishment.requested` with `from_node` reserves its units at the source (committed
there like a hold) and counts them as inbound at its node under the command id; the
`transfer_expired` / `transfer_taken_back` alerts naming the command id end it; the WMS's
`transfer.shipped` takes what shipped from on hand at the source (a debt must be said as
drift), releases the reserve and counts what shipped in transit at the destination;
`supply.received` there under the command id moves units from in transit to on hand;
`transfer.cancelled` ends it. The no-oversell check then holds the source's reserves to the
same bound as holds and allocations.
"""

from __future__ import annotations

from dataclasses import dataclass

from stockflow.state.events import SupplyReceived, TransferCancelled, TransferShipped
from stockflow.state.outputs import Alert, ReplenishmentRequested

ENDING_ALERTS = ("transfer_expired", "transfer_taken_back")


@dataclass
class ModelTransfer:
    from_node: str
    to_node: str
    qty: int
    shipped: bool = False
    received: int = 0


class TransferAudit:
    """Mixed into `Auditor`, which has `on_hand`, `inbound`, `committed_at`, `_dirty_nodes`,
    `_take_from_on_hand` and `PromiseBroken`'s callers."""

    def _init_transfers(self) -> None:
        self.transfers: dict[tuple[str, str], ModelTransfer] = {}  # (sku, command id) -> it
        self.transfers_requested = 0
        # Transfers the input being applied cancelled, or shipped while open: the engine may
        # have expired them just before (their deadline passed), which its alert says.
        self._cancelled: set[tuple[str, str]] = set()
        self._shipped_now: dict[tuple[str, str], TransferShipped] = {}

    def _transfer_input(self, ev) -> bool:
        """Apply a transfer input, or a receipt of one; False for anything else."""
        t = type(ev)
        self._cancelled, self._shipped_now = set(), {}
        if t is TransferShipped:
            self._shipped(ev)
        elif t is TransferCancelled:
            for sku, command_id in [k for k in self.transfers if k[1] == ev.command_id]:
                self._end(sku, command_id)
                self._cancelled.add((sku, command_id))
        elif t is SupplyReceived:
            transfer = self.transfers.get((ev.sku, ev.supply_id))
            if transfer is None or transfer.to_node != ev.node:
                return False
            transfer.received += ev.qty
            self.on_hand[(ev.sku, ev.node)] += ev.qty
            self._count_in_transit(ev.sku, ev.supply_id, transfer)
        else:
            return False
        return True

    def _transfer_output(self, out) -> None:
        t = type(out)
        if t is ReplenishmentRequested and out.from_node is not None:
            key = (out.sku, out.command_id)
            if key in self.transfers:
                raise AssertionError(f"transfer {out.command_id} requested twice")
            transfer = self.transfers[key] = ModelTransfer(out.from_node, out.node, out.qty)
            self.transfers_requested += 1
            self._reserve(out.sku, transfer, out.qty)
            self._count_in_transit(out.sku, out.command_id, transfer)
        elif t is Alert and out.kind in ENDING_ALERTS:
            transfer = self.transfers.get((out.sku, out.transfer))
            key = (out.sku, out.transfer)
            if transfer is None and key in self._cancelled:
                return  # a cancellation that came after its deadline: expired first
            if key in self._shipped_now:
                # Shipped after its deadline: expired first, then counted as a shipment the
                # engine never asked for (nothing of it received yet).
                ev = self._shipped_now[key]
                transfer = self.transfers[key] = ModelTransfer(
                    ev.from_node, ev.to_node, ev.qty, shipped=True)
                self._count_in_transit(out.sku, out.transfer, transfer)
                return
            if transfer is None or transfer.shipped:
                raise AssertionError(
                    f"under {out.cause}: {out.kind} for a transfer not open and unshipped: "
                    f"{out.transfer}")
            self._end(out.sku, out.transfer)

    def _shipped(self, ev: TransferShipped) -> None:
        key = (ev.sku, ev.command_id)
        transfer = self.transfers.get(key)
        if transfer is not None and transfer.shipped:
            return  # one shipment per transfer
        if transfer is None:
            transfer = self.transfers[key] = ModelTransfer(ev.from_node, ev.to_node, 0)
        else:
            self._shipped_now[key] = ev
            self._reserve(ev.sku, transfer, -transfer.qty)
            if transfer.to_node != ev.to_node:
                self.inbound[(ev.sku, transfer.to_node)].pop(ev.command_id, None)
                self._dirty_nodes.add((ev.sku, transfer.to_node))
        transfer.from_node, transfer.to_node = ev.from_node, ev.to_node
        transfer.qty, transfer.shipped = ev.qty, True
        self._take_from_on_hand((ev.sku, ev.from_node), ev.qty)
        self._dirty_nodes.add((ev.sku, ev.from_node))
        self._count_in_transit(ev.sku, ev.command_id, transfer)

    def _end(self, sku: str, command_id: str) -> None:
        transfer = self.transfers.pop((sku, command_id))
        if not transfer.shipped:
            self._reserve(sku, transfer, -transfer.qty)
        self.inbound[(sku, transfer.to_node)].pop(command_id, None)
        self._dirty_nodes.add((sku, transfer.to_node))

    def _reserve(self, sku: str, transfer: ModelTransfer, qty: int) -> None:
        self.committed_at[(sku, transfer.from_node)] += qty
        self._dirty_nodes.add((sku, transfer.from_node))

    def _count_in_transit(self, sku: str, command_id: str, transfer: ModelTransfer) -> None:
        key = (sku, transfer.to_node)
        in_transit = max(0, transfer.qty - transfer.received)
        if in_transit:
            self.inbound[key][command_id] = in_transit
        else:
            self.inbound[key].pop(command_id, None)
        self._dirty_nodes.add(key)
        if transfer.shipped and transfer.received >= transfer.qty:
            del self.transfers[(sku, command_id)]

    def reserved_at(self, sku: str, node: str) -> int:
        """Units the model holds reserved for transfers out of `node`."""
        return sum(t.qty for (s, _), t in self.transfers.items()
                   if s == sku and t.from_node == node and not t.shipped)
