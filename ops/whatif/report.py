"""The comparison for people (a table, differences against the first column), for scripts
(JSON with every figure) and for slides (a grouped bar chart of the main ratios)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import msgspec

from stockflow.ops.summary import Summary

from .compare import Column


class Figure(msgspec.Struct, frozen=True):
    key: str  # its name in the JSON
    label: str  # its row in the table
    unit: str  # share | count | km | ratio | seconds: how it and its difference are written
    value: Callable[[Summary], float]


def figures(columns: list[Column]) -> list[Figure]:
    """The rows, in order: rejections get one row per reason any column has."""
    reasons = sorted({r for c in columns for r in c.summary.rejected_by_reason})
    return [
        Figure("lines", "lines", "count", lambda s: s.lines),
        Figure("fill_rate", "fill rate (lines allocated)", "share", lambda s: s.fill_rate),
        Figure("oversold_paid_lines", "oversold paid lines", "count",
               lambda s: s.oversold_paid_lines),
        Figure("cross_region_share", "cross-region share (units)", "share",
               lambda s: s.cross_region_rate),
        Figure("split_rate", "split rate (allocated lines)", "share", lambda s: s.split_rate),
        Figure("mean_distance_km", "mean distance (units)", "km", lambda s: s.mean_distance_km),
        Figure("shipments_per_order", "shipments per order", "ratio",
               lambda s: s.shipments_per_order),
        Figure("backordered", "backordered at the end", "count",
               lambda s: s.final_status.get("backordered", 0)),
        Figure("stockout_lines", "stockout lines", "count", lambda s: s.stockout_lines),
        Figure("mean_units_on_hand", "mean units on hand", "count",
               lambda s: s.mean_units_on_hand),
        Figure("inventory_turns", "inventory turns (per year)", "ratio",
               lambda s: s.inventory_turns),
        Figure("units_purchased", "units purchased", "count", lambda s: s.units_purchased),
        Figure("units_transferred", "units transferred", "count",
               lambda s: s.units_transferred),
        *(Figure(f"rejected_{r}", f"rejected: {r}", "count",
                 lambda s, r=r: s.rejected_by_reason.get(r, 0)) for r in reasons),
        Figure("seconds", "replay time", "seconds", lambda s: s.seconds or 0.0),
    ]


def _value(unit: str, v: float) -> str:
    return {"share": f"{v:.2%}", "count": f"{v:,.0f}", "km": f"{v:,.0f} km",
            "ratio": f"{v:.3f}", "seconds": f"{v:.1f} s"}[unit]


_DIFFERENCE = {"share": (100, 2, " pp"), "count": (1, 0, ""), "km": (1, 0, " km"),
               "ratio": (1, 3, ""), "seconds": (1, 1, " s")}  # scale, decimals, suffix


def _difference(unit: str, d: float) -> str:
    scale, decimals, suffix = _DIFFERENCE[unit]
    shown = round(d * scale, decimals) + 0.0  # + 0.0: a difference that rounds away is +0
    return f"{shown:+,.{decimals}f}{suffix}"


def print_table(trace: str, columns: list[Column]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"stockflow whatif {Path(trace).name}", title_justify="left")
    table.add_column("")
    for c in columns:
        table.add_column(c.name, justify="right")
    first = columns[0].summary
    for fig in figures(columns):
        base = fig.value(first)
        cells = [_value(fig.unit, base)]
        for c in columns[1:]:
            v = fig.value(c.summary)
            diff = "" if fig.unit == "seconds" else f" ({_difference(fig.unit, v - base)})"
            cells.append(_value(fig.unit, v) + diff)
        table.add_row(fig.label, *cells)
    Console(width=200).print(table)


def as_json(trace: str, columns: list[Column]) -> bytes:
    """Every column's summary and settings, its figures, and their differences against the
    first column (shares as fractions, not points)."""
    figs = figures(columns)
    first = columns[0].summary
    doc = {
        "trace": trace,
        "columns": [
            {
                **msgspec.to_builtins(c),
                "figures": {f.key: f.value(c.summary) for f in figs},
                "vs_first": {f.key: f.value(c.summary) - f.value(first) for f in figs},
            }
            for c in columns
        ],
    }
    return msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n"


PLOTTED = ("fill_rate", "cross_region_share", "split_rate")
# What the stock cost: each on its own scale, one small panel each.
STOCK = ("mean_units_on_hand", "stockout_lines", "inventory_turns", "units_purchased",
         "units_transferred")


def plot(trace: str, columns: list[Column], path: str) -> None:
    """Grouped bars: the main ratios (and the share of lines rejected), one bar per column;
    below, one panel per stock figure."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("--plot needs matplotlib (pip install 'stockflow[bench]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {f.key: f for f in figures(columns)}
    ratios = {figs[k].label: figs[k].value for k in PLOTTED}
    ratios["rejected (lines)"] = lambda s: s.final_status.get("rejected", 0) / (s.lines or 1)
    width_in = max(2 + len(ratios) * (1 + 0.5 * len(columns)), 2 * len(STOCK))
    fig = plt.figure(figsize=(width_in, 8))
    grid = fig.add_gridspec(2, len(STOCK), height_ratios=(3, 2))
    ax = fig.add_subplot(grid[0, :])
    width = 0.8 / len(columns)
    for i, c in enumerate(columns):
        xs = [j + (i - (len(columns) - 1) / 2) * width for j in range(len(ratios))]
        values = [100 * v(c.summary) for v in ratios.values()]
        bars = ax.bar(xs, values, width, label=c.name)
        ax.bar_label(bars, labels=[f"{v:.2f}" if v < 10 else f"{v:.1f}" for v in values],
                     fontsize=8, padding=2)
    ax.set_xticks(range(len(ratios)), list(ratios), fontsize=9)
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.set_title(f"stockflow whatif: {Path(trace).name}")
    ax.legend()
    colors = [f"C{i}" for i in range(len(columns))]
    for k, key in enumerate(STOCK):
        panel = fig.add_subplot(grid[1, k])
        values = [figs[key].value(c.summary) for c in columns]
        bars = panel.bar(range(len(columns)), values, color=colors)
        panel.bar_label(bars, labels=[_value(figs[key].unit, v) for v in values],
                        fontsize=7, padding=2)
        panel.set_title(figs[key].label, fontsize=9)
        panel.set_xticks([])
        panel.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
