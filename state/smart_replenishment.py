"""Smart replenishment: a node's reorder point and order-up-to from the demand it meets.

With `EngineConfig.replenishment` "smart", each SKU x node that has a reorder point (a
`policy.upserted` names it for replenishment) learns its daily demand: the units of the lines
placed there per period of event time (`demand_period_s`, a day by default), over the last
`demand_window_days` periods: from the period its reorder point was given on, periods without
a line count as 0 (a node that sells nothing learns that it needs nothing).
Once `demand_min_days` periods are known, with mean demand mu and standard deviation sigma
per period, lead time L and review period R (in periods) and z the service level's normal
quantile:

    safety stock = z x sigma x sqrt(L + R)
    reorder point = ceil(mu x L + safety stock)
    order-up-to = max(reorder point + 1, ceil(mu x (L + R) + safety stock))

Before that, the policy's own points stand. With `replenishment_lead_s` None the lead time is
learnt per node: each purchase (`supply.inbound` of kind purchase_order) from its announcement
to its first receipt, the latest weighing a quarter against those before; until one is
received the policy's own points stand. The history lives on the position (`Position.
demand_days`), so it is snapshotted and restored with it. Lines rejected for want of stock
place nothing: what they asked for is not counted (demand seen through stockouts is low).
"""

from __future__ import annotations

from math import ceil, sqrt
from statistics import NormalDist
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .config import EngineConfig
    from .position import Position

class SmartRule(NamedTuple):
    z: float  # the service level's quantile of the standard normal
    service_level: float
    lead_days: float | None  # in periods; None: learnt per node
    review_days: float
    window_days: int
    min_days: int
    period_ms: int
    period: str  # the period, said in the reasons: "day", "1 h"


class Points(NamedTuple):
    reorder_point: int
    order_up_to: int
    why: str  # where they came from


def rule_of(config: EngineConfig) -> SmartRule | None:
    """The rule, or None when replenishment keeps the policies' fixed points."""
    if config.replenishment != "smart":
        return None
    period_s = config.demand_period_s
    period = "day" if period_s == 86400 else f"{period_s / 3600:g} h"
    lead_s = config.replenishment_lead_s
    return SmartRule(NormalDist().inv_cdf(config.service_level), config.service_level,
                     None if lead_s is None else lead_s / period_s,
                     config.review_period_s / period_s,
                     config.demand_window_days, config.demand_min_days,
                     int(period_s * 1000), period)


def start_demand(pos: Position, clock_ms: int, rule: SmartRule) -> None:
    """The node is named for replenishment: its demand is counted from this period on."""
    if pos.demand_days is None:
        pos.demand_days, pos.demand_day = [0], clock_ms // rule.period_ms


def announced(pos: Position, supply_id: str, clock_ms: int) -> None:
    """A purchase announced here: its lead time is measured when it is received."""
    if pos.purchases is None:
        pos.purchases = {}
    pos.purchases.setdefault(supply_id, clock_ms)


def received(pos: Position, supply_id: str, clock_ms: int) -> None:
    """A receipt: the first of a purchase announced here teaches its lead time."""
    if pos.purchases is None or supply_id not in pos.purchases:
        return
    lead = max(0, clock_ms - pos.purchases.pop(supply_id))
    pos.lead_ms = lead if pos.lead_ms is None else (3 * pos.lead_ms + lead) // 4
    if not pos.purchases:
        pos.purchases = None


def count_demand(pos: Position, clock_ms: int, qty: int, rule: SmartRule) -> None:
    """`qty` units placed at this position in the current period."""
    today = clock_ms // rule.period_ms
    days = _up_to(pos, today, rule.window_days)
    days[-1] += qty
    pos.demand_days, pos.demand_day = days, today


def points(pos: Position, clock_ms: int, rule: SmartRule) -> Points | None:
    """The learnt points, or None while fewer than `min_days` periods are known."""
    if pos.demand_days is None:
        return None
    days = _up_to(pos, clock_ms // rule.period_ms, rule.window_days)
    if len(days) < rule.min_days:
        return None
    n = len(days)
    mu = sum(days) / n
    sigma = sqrt(sum((d - mu) ** 2 for d in days) / n)
    lead, review, learnt = rule.lead_days, rule.review_days, ""
    if lead is None:
        if pos.lead_ms is None:
            return None  # no purchase received here yet
        lead, learnt = pos.lead_ms / rule.period_ms, " learnt"
    safety = rule.z * sigma * sqrt(lead + review)
    reorder_point = ceil(mu * lead + safety - 1e-9)
    order_up_to = max(reorder_point + 1, ceil(mu * (lead + review) + safety - 1e-9))
    per = rule.period
    days_s = "days" if per == "day" else f"periods of {per}"
    why = (f"learnt: {mu:.2f} units/{per} (sd {sigma:.2f}) over {n} {days_s}, "
           f"lead {lead:g}{learnt}, review {review:g} ({days_s}), "
           f"service level {rule.service_level:g}, safety stock {safety:.1f}")
    return Points(reorder_point, order_up_to, why)


def _up_to(pos: Position, today: int, window: int) -> list[int]:
    """The daily history brought up to `today` (zeros for the days between), at most
    `window` days long; a new list."""
    if pos.demand_days is None:
        return [0]
    gap = max(0, today - pos.demand_day)
    days = pos.demand_days + [0] * min(gap, window)
    return days[-window:]
