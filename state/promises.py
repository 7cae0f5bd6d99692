"""Promise dates kept true: what a node promises for now fits in what its on hand gives.

A line held or allocated at a node is promised from on hand now (`promised_at` null) or for
the ETA of the inbound that covers it. When on hand there can no longer give what it promised
for now (a count, an adjustment, a shipment beyond on hand, a quarantined lower count), or the
inbound the dated lines wait for arrives early or slips, the node's promises are worked out
again, in the engine's order of priority:
- transfer reserves first: they ship now or not at all, so where they alone are beyond on
  hand, the newest are taken back (alert `transfer_taken_back`), as in a shortage;
- then the lines promised for now, allocations before holds, oldest orders first, keep their
  promise while on hand covers them (a smaller one after a larger that does not fit still
  does); the rest wait for inbound;
- those and the lines already waiting, in the same order of priority (a stable order: dates
  do not reorder it), are served by what on hand has left, then by the inbound their
  channel counts (all announced inbound where that is not enough). A line is told when its
  promise would break (now -> a date, a later date) or when it can ship now before its date
  (`_worth_telling`); an earlier date alone is kept quietly, the one told still holds. A
  quarantined lower count keeps its units out of what gives now; where not even the inbound
  covers a line then, the ledger's own count backs it as long as the count is undecided.
Each line whose date moved gets a new `order.status` (reason `promise_moved`): an allocated
line one for that node, a held line its whole set of holds, as every held status is.

Only nodes whose on hand, inbound, transfer reserves or kept-out units moved under the event
are looked at, and of those only where some line waits or what is promised for now is beyond
on hand: the usual event costs one comparison per node it moved.
"""

from __future__ import annotations

from bisect import bisect_left

from .context import Ctx
from .lines import ALLOCATED, Line
from .position import Position
from .supply_policy import eta_covering
from .transfers import take_back_transfers

PROMISE_MOVED = "promise_moved"


def keep_promises(ctx: Ctx) -> bool:
    """Re-date the lines of every node the event moved (`Ctx.moved`) whose promises no longer
    hold; True if a transfer was taken back (its destination's inbound fell)."""
    moved = ctx.moved
    if not moved:
        return False
    ctx.moved = None
    took_back = False
    kept_out = ctx.book.kept_out()
    for node in sorted(moved):
        pos = ctx.book.positions.get(node)
        if pos is None:
            continue
        kept = kept_out.get(node, 0) if kept_out else 0
        if pos.promise_ground(kept) == moved[node]:
            continue  # what the dates rest on is as it was: none can move later
        shelf = max(0, pos.on_hand - kept)
        if pos.transfer_out > shelf:
            took_back |= take_back_transfers(ctx, node, pos.transfer_out - shelf,
                                             f"on hand at {node} below its transfer reserves") > 0
        free = pos.gives_now(kept)  # below -waiting: lines promised for now beyond on hand
        if pos.waiting or free < 0:
            _redate(ctx, node, free + pos.held + pos.allocated, kept)
    return took_back


def _redate(ctx: Ctx, node: str, left: int, kept: int) -> None:
    """Work out the promise of every line at `node` again, `left` units of on hand being
    there for them now, `kept` more if a count held back there is wrong; tell those whose
    date moved."""
    book = ctx.book
    pos = book.positions[node]
    promised_now = pos.held + pos.allocated - pos.waiting
    if promised_now <= left:  # every line promised for now keeps it: date only the rest
        left -= promised_now
        queue = [(_priority(line), line) for line in book.waiting_lines(node)]
    else:
        now: list[tuple[tuple, Line]] = []
        queue = []  # lines to date from what is left
        for line in book.open_lines(node):
            waits = line.promised is not None and node in line.promised
            (queue if waits else now).append((_priority(line), line))
        now.sort(key=_first)
        for entry in now:
            units = entry[1].parts[node]
            if units <= left:
                left -= units
            else:
                queue.append(entry)
    queue.sort(key=_first)
    clock_ms = ctx.clock_ms
    arriving = _arriving(pos)
    wanted = 0
    for _, line in queue:
        wanted += line.parts[node]
        eta = None
        if wanted > left:
            eta = _covering(ctx, pos, wanted - left, line, arriving)
            if eta is None and wanted > left + kept:
                # beyond the lower count and the inbound: what the ledger's own count leaves
                eta = _covering(ctx, pos, wanted - left - kept, line, arriving)
        was = line.promised.get(node) if line.promised is not None else None
        if eta == was or not _worth_telling(was, eta, clock_ms):
            continue
        book.promise(line, node, eta)
        _tell(ctx, line, node)


def _worth_telling(was: int | None, eta: int | None, clock_ms: int) -> bool:
    """Whether a line told `was` (None: now) hears `eta`: always when it would break (now ->
    a date, a later date) and when it can ship now before its date; an earlier date alone is
    kept quietly (the one told still holds, and supply announced and revised by the minute
    would otherwise move it back and forth), as is a date already passed (its supply came,
    or is late)."""
    if was is None:
        return True
    if eta is None:
        return was > clock_ms
    return eta > was and eta > clock_ms


def _first(entry: tuple) -> tuple:
    return entry[0]


def _arriving(pos: Position) -> tuple[list[int], list[int]]:
    """The inbound at `pos` in ETA order: (ETAs, units arrived by each), asked once a node."""
    etas: list[int] = []
    by_then: list[int] = []
    total = 0
    if pos.inbound is not None:
        for eta_ms, units in sorted((e.eta_ms, e.qty) for e in pos.inbound.entries.values()):
            total += units
            etas.append(eta_ms)
            by_then.append(total)
    return etas, by_then


def _covering(ctx: Ctx, pos: Position, need: int, line: Line,
              arriving: tuple[list[int], list[int]]) -> int | None:
    """The ETA by which the inbound the line's channel counts covers `need` units, or else
    all the inbound announced there (`arriving`); None if even that does not."""
    view = ctx.view(line.channel)
    if view is not None:
        eta = eta_covering(pos, need, ctx.until_ms, view)
        if eta is not None:
            return eta
    # every kind, whole: within the engine's horizon or beyond it, the same first ETA
    etas, by_then = arriving
    i = bisect_left(by_then, need)
    return etas[i] if i < len(etas) else None


def _priority(line: Line) -> tuple:
    """Who keeps on hand first: allocations before holds, older orders first (the reverse of
    the order a shortage takes units back in)."""
    return (line.status != ALLOCATED, line.seq, line.order_id, line.line_id)


def _tell(ctx: Ctx, line: Line, node: str) -> None:
    if line.status == ALLOCATED:
        ctx.emit.status(line, ctx.sku, ALLOCATED, line.parts[node], node, PROMISE_MOVED)
    else:
        ctx.emit.holds(line, ctx.sku, PROMISE_MOVED)
