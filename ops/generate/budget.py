"""How many of each kind of line a trace gets, so that it comes out near the requested size."""

from __future__ import annotations

import msgspec

from .scenario import (
    ORDER_START_MS, ORDERS_PER_S, P_ADJ, P_CANCEL, P_DUP, P_PAY_LATE, P_PAY_ONTIME, P_RECEIVED,
    P_RESEND, P_RETURN, P_SNAP, SPIKE_SHARE, SUPPLY_SHARE, Scenario,
)
from .world import CHANNELS


class Budget(msgspec.Struct, frozen=True):
    n_normal: int  # orders in normal traffic
    n_spike: int  # orders in the flash sale
    n_supply: int  # supply ticks (count, adjustment or inbound)
    n_malformed: int
    p_malformed: float  # per valid line after the master data
    span_ms: int  # the window normal orders and supply arrive in
    spike_start: int  # when the flash sale opens, ms after BASE_TIME


def budget(sc: Scenario, n_master: int, n_snap0: int) -> Budget:
    """Splits `sc.events` between orders, supply and malformed lines, given the master data
    and opening counts it must hold; raises ValueError when too little is left for orders."""
    # master + (snap0 + dynamic) * (1 + P_DUP) = valid lines
    total = sc.events
    n_malformed = round(total * sc.malformed_rate)
    valid = total - n_malformed
    dynamic = (valid - n_master) / (1 + P_DUP) - n_snap0
    e_order = SPIKE_SHARE * _events_per_order(3) + (1 - SPIKE_SHARE) * _events_per_order(2)
    e_supply = 1 + (1 - P_SNAP - P_ADJ) * P_RECEIVED
    n_orders = int((1 - SUPPLY_SHARE) * dynamic / e_order) if dynamic > 0 else 0
    if n_orders < 20:
        need = int((n_master + n_snap0) * 1.5) + 200
        raise ValueError(
            f"Scenario(events={total}) is too small for {sc.skus} skus and {sc.stores} stores: "
            f"master data and initial snapshots alone take {n_master + n_snap0} lines; "
            f"use events >= {need} or fewer skus"
        )
    n_spike = round(SPIKE_SHARE * n_orders)
    n_normal = n_orders - n_spike
    span_ms = int(min(max(n_normal / ORDERS_PER_S, 3600.0), 3 * 86400.0) * 1000)
    # malformed lines are spread over everything after the master data
    eligible = valid - n_master
    return Budget(
        n_normal=n_normal,
        n_spike=n_spike,
        n_supply=max(1, round(SUPPLY_SHARE * dynamic / e_supply)),
        n_malformed=n_malformed,
        p_malformed=n_malformed / eligible if eligible > 0 else 0.0,
        span_ms=span_ms,
        spike_start=ORDER_START_MS + int(0.45 * span_ms),
    )


def _events_per_order(weight_col: int) -> float:
    """Lines one order brings on average (itself, payment, cancel, resend, return), with the
    channel weights of column `weight_col` of CHANNELS."""
    ws = [c[weight_col] for c in CHANNELS]
    tot = sum(ws)
    unpaid = sum(w * (1 - c[4]) for w, c in zip(ws, CHANNELS)) / tot
    paid_later = unpaid * (P_PAY_ONTIME + P_PAY_LATE)
    eventually_paid = 1 - unpaid * (1 - P_PAY_ONTIME - P_PAY_LATE)
    return 1 + P_RESEND + P_CANCEL + paid_later + P_RETURN * eventually_paid * (1 - P_CANCEL)
