"""Printing a replay's summary: a table for people, JSON for scripts."""

from __future__ import annotations

import sys

import msgspec
from rich.console import Console
from rich.table import Table

from .summary import Summary


def print_summary(summary: Summary, as_json: bool = False) -> None:
    if as_json:
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
        return
    table = Table(title="stockflow replay", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    lines = summary.lines or 1
    table.add_row("events", f"{summary.events:,}")
    table.add_row("orders / lines", f"{summary.orders:,} / {summary.lines:,}")
    for status, n in summary.final_status.items():
        table.add_row(f"  lines {status}", f"{n:,}  ({n / lines:.1%})")
    table.add_row("split rate (allocated lines)", f"{summary.split_rate:.2%}")
    table.add_row("cross-region rate (allocated units)", f"{summary.cross_region_rate:.2%}")
    table.add_row("mean distance (allocated units)", f"{summary.mean_distance_km:,.0f} km")
    table.add_row("shipments per order (allocated)", f"{summary.shipments_per_order:.3f}")
    table.add_row("oversold paid lines", f"{summary.oversold_paid_lines:,}")
    table.add_row("shortage alerts", f"{summary.shortage_alerts:,}")
    table.add_row("transfers requested (units)",
                  f"{summary.transfers_requested:,} ({summary.transfer_units:,})")
    for channel, figures in summary.by_channel.items():
        if figures.wos_weeks:
            table.add_row(f"{channel} (WOS {figures.wos_weeks:g} wk): fill rate",
                          f"{figures.fill_rate:.2%}")
            table.add_row("  protected units sold away (run-outs)",
                          f"{figures.wos_sold_away:,} ({figures.wos_run_outs:,})")
    table.add_row("slow movers flagged (SKUs)",
                  f"{summary.slow_mover_alerts:,} ({summary.slow_mover_skus:,})")
    table.add_row("dead letters", f"{summary.dead_letters:,}")
    table.add_row("duplicates dropped", f"{summary.duplicates:,}")
    for stream, n in summary.outputs.items():
        table.add_row(f"  out: {stream}", f"{n:,}")
    if summary.seconds is not None:
        table.add_row("replay time", f"{summary.seconds:.2f} s")
        table.add_row("throughput", f"{summary.events_per_s:,.0f} events/s")
    Console().print(table)
