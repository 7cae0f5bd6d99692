"""How `stockflow explain` prints an explanation: a table of candidates per sourcing."""

from __future__ import annotations

from collections import defaultdict

from stockflow.state.explain import NodeView, Sourcing

from .explain import Explanation, LineHistory, StatusSeen, Step

_DECIDED = {
    "fills": "decided by: fills the line", "region": "decided by: ship-to's region",
    "distance_km": "decided by: distance", "ship_cost": "decided by: ship cost",
    "node": "decided by: node id", "only_candidate": "the only node with ATP",
    "split": "no node fills it: split by rank",
}
_HEAD = ("rank", "node", "fills", "region", "km", "cost", "ATP", "on hand", "inbound", "held",
         "alloc", "xfer", "safety", "won")


def render(explanation: Explanation) -> str:
    out = [f"order {explanation.order_id} in {explanation.events}"]
    for history in explanation.lines:
        out += _line(history)
    return "\n".join(out)


def _line(history: LineHistory) -> list[str]:
    out = [f"line {history.line_id}: {history.sku} x {history.qty}"]
    fruitless = 0  # backorder fills in a row that found no units: the first one is shown
    for step in history.steps:
        if _fruitless(step):
            fruitless += 1
            if fruitless > 1:
                continue
        else:
            out += _more(fruitless)
            fruitless = 0
        out += _step(step)
    return out + _more(fruitless)


def _fruitless(step: Step) -> bool:
    s = step.sourcing
    return s is not None and s.trigger == "backorder_fill" and s.parts is None and not step.statuses


def _more(fruitless: int) -> list[str]:
    return [f"  ... {fruitless - 1} more backorder fills found no units"] if fruitless > 1 else []


def _step(step: Step) -> list[str]:
    s = step.sourcing
    if s is None:
        return [f"  then, under {step.event} {step.statuses[0].cause}: "
                f"{_statuses(step.statuses)}"]
    when = s.ts.isoformat(timespec="milliseconds") if s.ts is not None else ""
    out = [f"  {s.trigger.replace('_', ' ')} of {s.qty} at {when} ({step.event} {s.cause})",
           f"    channel {s.channel} ({'splits lines' if s.allow_split else 'no split'}), "
           + _destination(s)]
    out += _table([v for v in s.nodes if v.ineligible is None])
    protected = [f"{v.node} {v.protected}" for v in s.nodes if v.protected]
    if protected:  # out of ATP above: other channels' weeks of supply, other regions' reserves
        out.append("    protected for other channels or regions: " + _some(protected))
    barred = defaultdict(list)
    for v in s.nodes:
        if v.ineligible is not None:
            barred[v.ineligible].append(v.node)
    if barred:
        out.append("    not candidates: " + "; ".join(
            f"{why.replace('_', ' ')}: {_some(nodes)}" for why, nodes in barred.items()))
    if s.parts is not None:
        decided = (f" ({_DECIDED.get(s.decided_by, f'decided by: {s.decided_by}')}{_over(s)})"
                   if s.decided_by else "")
        out.append("    won: " + ", ".join(f"{n} {q}" for n, q in s.parts) + decided)
    else:
        out.append(f"    not filled: {s.unfilled}")
    if step.statuses:
        out.append(f"    status: {_statuses(step.statuses)}")
    return out


def _table(candidates: list[NodeView]) -> list[str]:
    """The candidates, ranked ones first; those with nothing at all on one line."""
    if not candidates:
        return ["    no candidate node"]
    out = []
    rows = [_HEAD] + [_row(v) for v in candidates if not _empty(v)]
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
        for row in rows:
            out.append("    " + "  ".join(c.rjust(w) if i > 1 else c.ljust(w)
                                          for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    empty = [v.node for v in candidates if _empty(v)]
    if empty:
        out.append(f"    nothing at: {', '.join(empty)}")
    return out


def _some(nodes: list[str], shown: int = 6) -> str:
    more = f" and {len(nodes) - shown} more" if len(nodes) > shown else ""
    return ", ".join(nodes[:shown]) + more


def _empty(v: NodeView) -> bool:
    """A candidate with nothing to show: no stock, no commitments, no policy."""
    return not (v.atp or v.on_hand or v.inbound_due or v.held or v.allocated or v.transfer_out
                or v.safety_stock)


def _over(s: Sourcing) -> str:
    """`; runner-up <node>` when one node won against another."""
    if s.decided_by in ("split", "only_candidate"):
        return ""
    ranked = [v for v in s.nodes if v.rank is not None]
    return f"; runner-up {ranked[1].node}"


def _destination(s: Sourcing) -> str:
    if s.fulfillment == "pickup":
        return f"pickup at {s.pickup_node}"
    return f"ship to {s.region} ({s.lat:.2f}, {s.lon:.2f})"


def _row(v: NodeView) -> tuple[str, ...]:
    return (
        str(v.rank) if v.rank is not None else "-", v.node, "yes" if v.fills else "no",
        "same" if v.same_region else "other", f"{v.distance_km:.1f}",
        "-" if v.ship_cost is None else f"{v.ship_cost:g}", str(v.atp), str(v.on_hand),
        str(v.inbound_due), str(v.held), str(v.allocated), str(v.transfer_out),
        str(v.safety_stock),
        str(v.won) if v.won else "",
    )


def _statuses(statuses: list[StatusSeen]) -> str:
    return "; ".join(
        st.status + (f" at {st.node}" if st.node else "") + f" {st.qty}"
        + (f" ({st.reason})" if st.reason else "")
        + (f", promised {st.promised_at.isoformat().replace('+00:00', 'Z')}"
           if st.promised_at else "")
        for st in statuses
    )
