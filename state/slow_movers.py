"""Slow movers: SKUs whose sales fell sharply, said once per fall so stock can be cleared early.

"Sold" is what customers ordered: the units of every new order line (`order.created`) that
was not rejected when placed. Demand is what a merchandiser reads; allocations would make a
SKU look slow whenever its stock ran short. Lines held, backordered, later cancelled or
expired still count: the customer asked for them, and most cancels come within hours, so a
window of weeks hardly moves.

Units are counted per day of the engine's clock (event time) in a ring of 2 × window + 1
days, kept only for SKUs that sell. A SKU is judged on whole days: the `window` days before
today against the `window` days before those, so the verdict can change only when a day
ends. It is judged when the clock enters a new day, by the sweep that begins it (sweep.py),
event on the SKU or none: a SKU that stopped selling is flagged then. Only SKUs that keep a
ring are looked at, and a ring is dropped once both windows are empty.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, NamedTuple

import msgspec

if TYPE_CHECKING:
    from .config import EngineConfig
    from .context import Ctx

DAY_MS = 86_400_000
EPOCH_DAY = date(1970, 1, 1)


class Sales(msgspec.Struct, array_like=True, gc=False):  # gc=False: see inbound.py
    """Units ordered per day of one SKU."""

    day: int  # the newest day counted, in days since the epoch (event time)
    units: list[int]  # a ring: day d at units[d % len(units)], for the last len(units) days
    slow: bool = False  # flagged and not recovered since: one alert per fall


class SlowMoverRule(NamedTuple):
    window: int  # days in each window
    drop: float  # the share of the earlier window's units a fall must reach
    min_units: int  # below this many units in the earlier window nothing is judged

    @property
    def ring(self) -> int:
        return 2 * self.window + 1  # both windows, and today still being counted


def rule_of(config: EngineConfig) -> SlowMoverRule | None:
    """The rule, or None where it is off: a drop above 100 % is never reached."""
    if config.slow_mover_drop > 1:
        return None
    return SlowMoverRule(
        config.slow_mover_window_days, config.slow_mover_drop, config.slow_mover_min_units)


def day_of(clock_ms: int) -> int:
    return clock_ms // DAY_MS


def count_sale(sales: Sales | None, today: int, qty: int, rule: SlowMoverRule) -> Sales:
    """`qty` units ordered today; returns the record (new for a SKU's first sale)."""
    if sales is None:
        sales = Sales(today, [0] * rule.ring)
    else:
        roll(sales, today, rule.ring)
    sales.units[today % len(sales.units)] += qty
    return sales


def roll(sales: Sales, today: int, ring: int) -> None:
    """Move the ring to `today`: days it passed over sold nothing."""
    if len(sales.units) != ring:  # the window was configured otherwise when this was kept
        sales.units = _resized(sales, ring)
    units = sales.units
    for day in range(max(sales.day + 1, today - ring + 1), today + 1):
        units[day % ring] = 0
    sales.day = max(sales.day, today)


def _resized(sales: Sales, ring: int) -> list[int]:
    old = sales.units
    units = [0] * ring
    for day in range(sales.day - min(len(old), ring) + 1, sales.day + 1):
        units[day % ring] = old[day % len(old)]
    return units


def windows(sales: Sales, window: int) -> tuple[int, int]:
    """(units in the last `window` whole days, units in the `window` days before those)."""
    units, today = sales.units, sales.day
    return (_days(units, today - window, window), _days(units, today - 2 * window, window))


def _days(units: list[int], first: int, days: int) -> int:
    """Units of `days` days from day `first` on, read from the ring as at most two slices:
    every SKU that sells is judged each day, and a sum over slices runs in C."""
    start = first % len(units)
    end = start + days
    if end <= len(units):
        return sum(units[start:end])
    return sum(units[start:]) + sum(units[:end - len(units)])


def judge(ctx: Ctx, today: int, rule: SlowMoverRule) -> None:
    """A new day for the SKU: flag it if it just became slow; forget it once it sold nothing
    for both windows (and is not flagged), so idle SKUs keep no ring."""
    sales = ctx.book.sales
    roll(sales, today, rule.ring)
    recent, before = windows(sales, rule.window)
    if before >= rule.min_units:  # too few units to tell a fall from noise: memory stays
        slow = (before - recent) / before >= rule.drop
        if slow and not sales.slow:
            ctx.emit.alert("slow_mover", ctx.sku, _detail(ctx, today, rule, recent, before))
        sales.slow = slow
    if not sales.slow and not any(sales.units):
        ctx.book.sales = None


def _detail(ctx: Ctx, today: int, rule: SlowMoverRule, recent: int, before: int) -> str:
    last_day = EPOCH_DAY + timedelta(days=today - 1)
    stock = ", ".join(
        f"{node} {pos.on_hand}" for node, pos in sorted(ctx.book.positions.items())
    ) or "none reported"
    return (
        f"{recent} units ordered in the {rule.window} days to {last_day.isoformat()} against "
        f"{before} in the {rule.window} days before: down {(before - recent) / before:.1%}; "
        f"on hand: {stock}"
    )
