"""Which inbound supply a channel may promise: its policy per supply kind, at one moment.

A channel's `supply` (master data) names, per kind of inbound supply, the share of the units
it counts (rounded down) and how far ahead of the clock their ETA may lie. A kind it does not
name is not promised; `{}` promises stock on hand only. Without a policy a channel counts
every kind whole within the engine's horizon, the engine's own view (`Position.atp`).

A channel's ATP at a node = on hand - held - allocated - safety stock + the inbound its policy
counts. Committed units are subtracted whatever channel committed them, so no unit is
promised twice, and since a policy counts at most the units announced, no channel's view
exceeds the all-inbound one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from math import floor

from .events import Channel
from .position import Position

# One kind a channel counts: (kind, share, horizon_ms, offset_ms): its ETA bound is the
# engine's (`until_ms`, clock + inbound horizon) + offset_ms, i.e. clock + horizon_ms.
Term = tuple[str, float, int, int]
# What a channel counts; None: the engine's view (every kind, whole, due by the engine's
# horizon), which every channel without a policy shares. Built once per channel (`Catalog`).
SupplyView = tuple[Term, ...]


def supply_view(channel: Channel | None, horizon_ms: int) -> SupplyView | None:
    """The channel's view; `horizon_ms` is the engine's (a kind with no `horizon_s` of its
    own uses it). None for a channel without a policy."""
    if channel is None or channel.supply is None:
        return None
    terms = []
    for kind, rule in sorted(channel.supply.items()):
        own = horizon_ms if rule.horizon_s is None else int(rule.horizon_s * 1000)
        if rule.share > 0:
            terms.append((kind, rule.share, own, own - horizon_ms))
    return tuple(terms)


def counted_inbound(pos: Position, view: SupplyView, until_ms: int) -> int:
    """The inbound units at `pos` the view counts: per kind, its share (rounded down) of the
    units due by its horizon (`until_ms`: the engine's)."""
    inbound = pos.inbound
    if inbound is None or not view:
        return 0
    counted = 0
    for kind, share, horizon_ms, offset_ms in view:
        due = inbound.due_of_kind(kind, horizon_ms, until_ms + offset_ms)
        if due:
            counted += _share_of(share, due)
    return counted


def counted_as_applied(pos: Position, view: SupplyView) -> int | None:
    """`counted_inbound` as the ledger last counted it, moving no horizon (the read side);
    None where the channel never asked at this node (it does not sell from it)."""
    inbound = pos.inbound
    if inbound is None or not view:
        return 0
    counted = 0
    for kind, share, horizon_ms, _ in view:
        window = next((w for w in inbound.windows or () if w.kind == kind
                       and w.horizon_ms == horizon_ms), None)
        if window is None:
            return None
        counted += _share_of(share, window.due)
    return counted


def channel_atp(pos: Position, until_ms: int, view: SupplyView | None) -> int:
    """ATP at `pos` as a channel sees it (`view` None: the engine's view, due by `until_ms`)."""
    if view is None:
        return pos.atp(until_ms)
    return pos.atp_counting(counted_inbound(pos, view, until_ms))


def promise_date(pos: Position, qty: int, until_ms: int, view: SupplyView | None,
                 kept_out: int = 0) -> int | None:
    """When `qty` more units committed at `pos` are covered: None if what on hand gives now
    (`Position.gives_now`) covers them, else the earliest ETA (ms) by which the inbound the
    view counts covers the rest (what is committed there already comes first)."""
    need = qty - pos.gives_now(kept_out)
    if need <= 0:
        return None
    return eta_covering(pos, need, until_ms, view)


def eta_covering(pos: Position, need: int, until_ms: int, view: SupplyView | None) -> int | None:
    """The earliest ETA (ms) by which the inbound at `pos` the view counts adds up to `need`
    units (`view` None: every kind, whole, due by `until_ms`); None if it never does."""
    if pos.inbound is None:
        return None
    entries = pos.inbound.entries.values()
    if view is None:  # every kind, whole, due by the engine's horizon
        counted = 0
        for eta_ms, units in sorted((e.eta_ms, e.qty) for e in entries if e.eta_ms <= until_ms):
            counted += units
            if counted >= need:
                return eta_ms
        return None  # not covered (cannot happen for units sourced on this view)
    terms = {kind: (share, until_ms + offset) for kind, share, _, offset in view}
    counted = 0
    due: dict[str, int] = {}  # kind -> its units due so far, in ETA order
    for eta_ms, kind, units in sorted((e.eta_ms, e.kind, e.qty) for e in entries
                                      if e.kind in terms and e.eta_ms <= terms[e.kind][1]):
        share = terms[kind][0]
        before = due.get(kind, 0)
        due[kind] = before + units
        counted += _share_of(share, before + units) - _share_of(share, before)
        if counted >= need:
            return eta_ms
    return None  # not covered (cannot happen for units sourced on this view)


def _share_of(share: float, units: int) -> int:
    """`share` of `units`, rounded down (the epsilon keeps 0.29 x 100 at 29)."""
    return units if share >= 1 else floor(share * units + 1e-9)


def datetime_of(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
