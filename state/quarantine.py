"""The snapshot guard: a suspicious ERP count is checked before it is trusted.

One wrong `stock.snapshot` (on hand 0 instead of 500) would otherwise take back every hold
and allocation at its node at once. With the guard on, a count that drops on hand by more
than a share of the ledger's count, and lies more than a number of units below what is
committed there, is quarantined instead of applied (alert `snapshot_quarantined`):
- what is committed there stays committed: the ledger's count still backs it;
- nothing new is promised there beyond what the lower count allows: the units it says are
  missing are kept out of ATP, so if it is true, nothing new was oversold (nor transferred
  away); only its reorder point is judged on the ledger's count, so an unchecked count orders
  nothing;
- `stock.snapshot.approved` applies it as it would have been, on top of what changed on hand
  since (shortage resolution and all); `stock.snapshot.rejected` drops it; a later count
  (higher seq) supersedes it and is judged on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import msgspec

from .config import EngineConfig
from .events import Node

if TYPE_CHECKING:
    from .position import Position


class Quarantine(msgspec.Struct, array_like=True, gc=False):  # gc=False: see inbound.py
    """A count held back at one SKU x node."""

    event_id: str  # the stock.snapshot held back
    seq: int
    on_hand: int  # its count
    # The ledger's on hand when it came minus its count (> 0): the units it says are not
    # there. They stay out of ATP until it is settled, whatever else moves on hand meanwhile.
    kept_out: int


class Guard(NamedTuple):
    share: float  # of the ledger's on hand a count must drop by to be suspect...
    units: int  # ...and how far below what is committed it must lie

    def suspects(self, pos: Position, count: int) -> bool:
        """Whether `count` would take back commitments on a drop too large to trust unseen."""
        drop = pos.on_hand - count
        return drop > self.share * pos.on_hand and pos.committed - count > self.units


class GuardDecision(NamedTuple):
    """What the guard did with one count, a fact for the edge to log: `quarantined`,
    `approved`, `rejected`, or `superseded` by a later count."""

    what: str
    snapshot_event_id: str
    sku: str
    node: str


def guard_at(config: EngineConfig, node: Node | None) -> Guard | None:
    """The guard at a node: its own settings over the engine's; None where it is off."""
    share, units = config.snapshot_guard_share, config.snapshot_guard_units
    if node is not None:
        if node.snapshot_guard_share is not None:
            share = node.snapshot_guard_share
        if node.snapshot_guard_units is not None:
            units = node.snapshot_guard_units
    return None if share is None else Guard(share, units)


def quarantine_detail(held: Quarantine, pos: Position) -> str:
    return (
        f"snapshot {held.event_id} counts {held.on_hand}, ledger {pos.on_hand}, committed "
        f"{pos.committed} (held {pos.held}, allocated {pos.allocated}): quarantined until "
        f"approved or rejected; nothing new is promised beyond the lower count"
    )
