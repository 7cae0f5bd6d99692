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
    from .book import SkuBook
    from .context import Ctx
    from .events import StockSnapshot, StockSnapshotApproved, StockSnapshotRejected
    from .master import Catalog
    from .position import Position


class Quarantine(msgspec.Struct, array_like=True, gc=False):  # gc=False: see inbound.py
    """A count held back at one SKU x node."""

    event_id: str  # the stock.snapshot held back
    seq: int
    on_hand: int  # its count
    # The ledger's on hand when it came minus its count (> 0): the units it says are not
    # there. They stay out of ATP until it is decided, whatever else moves on hand meanwhile.
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


class SnapshotGuarding:
    """The ledger's side of the guard: holding a suspect count back and settling it.

    A `Ledger` is one: it has the `config`, `catalog`, `books`, the `quarantined` index
    (event id -> (sku, node): approvals and rejections name only the event id and reach every
    bucket; the one holding it acts) and the `_ctx` / `_after_change` / `_set_count` used here.
    """

    config: EngineConfig
    catalog: Catalog
    books: dict[str, SkuBook]
    quarantined: dict[str, tuple[str, str]]
    verdicts_applied: int
    guard_decisions: list[GuardDecision]

    def _note_guards(self) -> None:
        """Whether the guard is on anywhere: where it is not, counts skip it at no cost."""
        self.guarded = self.config.snapshot_guard_share is not None or any(
            node.snapshot_guard_share is not None for node in self.catalog.nodes.values())

    def _suspect(self, ev: StockSnapshot, pos: Position) -> bool:
        guard = guard_at(self.config, self.catalog.nodes.get(ev.node))
        return guard is not None and guard.suspects(pos, ev.on_hand)

    def _supersede(self, ctx: Ctx, ev: StockSnapshot) -> bool:
        """A count held back at the node gives way to a newer one, which is judged on its
        own; False when `ev` is not newer than it."""
        held = ctx.book.quarantine_at(ev.node)
        if held is None:
            return True
        if ev.seq <= held.seq:
            return False
        self._lift(ctx, ev.node)
        self.guard_decisions.append(GuardDecision("superseded", held.event_id, ev.sku, ev.node))
        return True

    def _quarantine(self, ctx: Ctx, ev: StockSnapshot, pos: Position) -> None:
        """Quarantine a suspect count: commitments stay, new ones get only what it allows."""
        held = Quarantine(ev.event_id, ev.seq, ev.on_hand, pos.on_hand - ev.on_hand)
        ctx.moved_at(ev.node)  # the units it keeps out no longer give anything now
        ctx.book.quarantine(ev.node, held)
        self.quarantined[ev.event_id] = (ev.sku, ev.node)
        ctx.emit.alert("snapshot_quarantined", ev.sku, quarantine_detail(held, pos), ev.node)
        self.guard_decisions.append(GuardDecision("quarantined", ev.event_id, ev.sku, ev.node))
        self._after_change(ctx)

    def _lift(self, ctx: Ctx, node: str) -> Quarantine | None:
        ctx.moved_at(node)
        held = ctx.book.lift(node)
        if held is not None:
            self.quarantined.pop(held.event_id, None)
            ctx.supply_rose = True  # the units it kept out of ATP are sellable again
        return held

    def _verdict(self, snapshot_event_id: str, clock_ms: int):
        """Settle the quarantine of that snapshot, if this bucket holds it: (ctx, node, the
        count held back), else None."""
        where = self.quarantined.get(snapshot_event_id)
        if where is None:
            return None  # another bucket's, already decided or superseded, or never held
        sku, node = where
        ctx = self._ctx(sku, clock_ms)
        held = self._lift(ctx, node)
        self.verdicts_applied += 1
        return ctx, node, held

    def _approved(self, ev: StockSnapshotApproved, clock_ms: int, seq: int, skus) -> None:
        decided = self._verdict(ev.snapshot_event_id, clock_ms)
        if decided is not None:
            ctx, node, held = decided
            self.guard_decisions.append(
                GuardDecision("approved", ev.snapshot_event_id, ctx.sku, node))
            # As it would have been: the count, plus every change on hand since it came.
            on_hand = ctx.book.positions[node].on_hand - held.kept_out
            self._set_count(ctx, node, on_hand, held.seq)

    def _rejected(self, ev: StockSnapshotRejected, clock_ms: int, seq: int, skus) -> None:
        decided = self._verdict(ev.snapshot_event_id, clock_ms)
        if decided is not None:
            ctx, node, _ = decided
            self.guard_decisions.append(
                GuardDecision("rejected", ev.snapshot_event_id, ctx.sku, node))
            self._after_change(ctx)

    def find_quarantined(self) -> None:
        """Rebuild the index from the books (after a restore)."""
        self.quarantined = {
            held.event_id: (sku, node)
            for sku, book in self.books.items() if book.quarantined is not None
            for node, held in book.quarantined.items()
        }
