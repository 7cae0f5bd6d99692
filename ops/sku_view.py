"""How a SKU's report reads: JSON for machines (the HTTP API, `inspect --json`) and a table
for people (`stockflow inspect`). Both say the same figures under the same names."""

from __future__ import annotations

from datetime import datetime, timezone

from stockflow.state.node_position import NodePosition, SkuReport


def eta_text(ms: int) -> str:
    """An ETA as RFC 3339 UTC, as the contract writes times."""
    at = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return at.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace(
        "+00:00", "Z")


def position_json(sku: str, node: str, pos: NodePosition) -> dict:
    return {
        "sku": sku, "node": node, "on_hand": pos.on_hand,
        "inbound": {kind: {"units": i.units, "earliest_eta": eta_text(i.earliest_eta_ms)}
                    for kind, i in sorted(pos.inbound.items())},
        "inbound_due": pos.inbound_due, "held": pos.held, "allocated": pos.allocated,
        "transfer_out": pos.transfer_out, "safety_stock": pos.safety_stock,
        "kept_out": pos.kept_out, "now": pos.now, "atp": pos.atp,
        **({"atp_by_channel": dict(sorted(pos.by_channel.items()))} if pos.by_channel else {}),
        **({"reorder_point": pos.reorder_point, "order_up_to": pos.order_up_to,
            "points_from": pos.points_from} if pos.reorder_point is not None else {}),
    }


def availability_json(report: SkuReport, channel: str) -> dict:
    return {"sku": report.sku, "channel": channel,
            "available": report.available.get(channel, 0),
            "max_line_qty": report.max_line_qty.get(channel, 0)}


def channels_json(report: SkuReport) -> dict:
    return {"sku": report.sku, "channels": {
        ch: {"available": n, "max_line_qty": report.max_line_qty.get(ch, 0)}
        for ch, n in sorted(report.available.items())},
        "checkout_pending": report.checkout_pending}


def report_json(report: SkuReport, node: str | None = None) -> dict:
    """The whole report; with `node`, only that node's position."""
    return {
        "sku": report.sku,
        "positions": [position_json(report.sku, n, pos)
                      for n, pos in sorted(report.positions.items()) if node in (None, n)],
        "channels": channels_json(report)["channels"],
        "checkout_pending": report.checkout_pending,
    }


_COLUMNS = ("node", "on hand", "inbound", "due", "held", "allocated", "transfer out", "safety",
            "kept out", "now", "ATP")


def report_table(report: SkuReport, node: str | None = None) -> str:
    """Positions per node, inbound by kind, then each channel's availability, as aligned
    text. `due` is the inbound counted in ATP (ETA within the horizon); `now` what on hand
    gives now (beyond it, lines are promised for an inbound's ETA)."""
    shown = [(n, pos) for n, pos in sorted(report.positions.items()) if node in (None, n)]
    rows = [_COLUMNS] + [
        (n, str(pos.on_hand), str(sum(i.units for i in pos.inbound.values())),
         str(pos.inbound_due), str(pos.held), str(pos.allocated), str(pos.transfer_out),
         str(pos.safety_stock), str(pos.kept_out), str(pos.now), str(pos.atp))
        for n, pos in shown]
    lines = [f"SKU {report.sku}", *_aligned(rows, left={0})]
    inbound = [("inbound at", "kind", "units", "earliest ETA")] + [
        (n, kind, str(i.units), eta_text(i.earliest_eta_ms))
        for n, pos in shown for kind, i in sorted(pos.inbound.items())]
    if len(inbound) > 1:
        lines += ["", *_aligned(inbound, left={0, 1, 3})]
    policies = [("ATP at", "channel (own supply policy)", "ATP")] + [
        (n, ch, str(atp)) for n, pos in shown for ch, atp in sorted((pos.by_channel or {}).items())]
    if len(policies) > 1:
        lines += ["", *_aligned(policies, left={0, 1})]
    points = [("replenishment at", "reorder point", "order-up-to", "from")] + [
        (n, str(pos.reorder_point), str(pos.order_up_to), pos.points_from or "")
        for n, pos in shown if pos.reorder_point is not None]
    if len(points) > 1:
        lines += ["", *_aligned(points, left={0, 3})]
    channels = [("channel", "available", "max_line_qty")] + [
        (ch, str(n), str(report.max_line_qty.get(ch, 0)))
        for ch, n in sorted(report.available.items())]
    lines += ["", *(_aligned(channels, left={0}) if len(channels) > 1
                    else ["no channel published"])]
    if report.checkout_pending:
        lines.append(f"checkout holds not taken in yet: {report.checkout_pending} units "
                     "(reservations count them already)")
    return "\n".join(lines)


def _aligned(rows: list[tuple[str, ...]], left: set[int]) -> list[str]:
    """Columns in `left` aligned left (names, text), the others right (numbers)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
                      for i, cell in enumerate(r)).rstrip() for r in rows]
