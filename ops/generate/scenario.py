"""What a trace is made of: the settings a user picks and the odds every trace shares."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec

# Event time of the first line; every time in the generator is milliseconds after it.
BASE_TIME = datetime(2026, 11, 10, tzinfo=timezone.utc)


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    events: int = 100_000  # approximate total number of lines to emit (+-5%)
    seed: int = 7
    skus: int = 2_000
    stores: int = 24
    malformed_rate: float = 0.0  # share of lines written as malformed messages


# What `stockflow generate` and `stockflow demo` write unless told otherwise: a few malformed
# lines among the events, so the dead letters show.
GENERATED = Scenario(malformed_rate=0.0005)
DEMO = msgspec.structs.replace(GENERATED, events=200_000)

# -- orders ----------------------------------------------------------------------------
ZIPF_S = 1.1  # SKU popularity: the SKU of rank r sells in proportion to 1 / (r + 1) ** ZIPF_S
LINES_CUM = (0.74, 0.88, 0.96, 1.0)  # 1, 2, 3, 4 lines
QTY_CUM = (0.64, 0.86, 0.95, 1.0)  # 1, 2, 3, 4-6
P_PAY_ONTIME, P_PAY_LATE = 0.82, 0.08  # of unpaid orders; the rest never pay
P_CANCEL = 0.03
P_CANCEL_LINES = 0.5  # of cancels on multi-line orders: only some lines
P_RESEND = 0.01
P_RETURN = 0.006
P_RESTOCK = 0.7
ORDER_START_MS = 120_000
ORDERS_PER_S = 6.0  # normal traffic rate that sets the span of the trace
SHIP_TO_POOL = 4096  # customer addresses, drawn once

# -- the flash sale --------------------------------------------------------------------
SPIKE_LINES_CUM = (0.95, 1.0)
SPIKE_QTY_CUM = (0.75, 0.95, 1.0)  # 1, 2, 3
SPIKE_SHARE = 0.15  # of all orders
SPIKE_WINDOW_MS = 120_000
SPIKE_HOT_P = 0.95  # a spike order line is on a hot SKU with this probability

# -- supply ----------------------------------------------------------------------------
SUPPLY_SHARE = 0.12  # of the dynamic events
P_SNAP, P_ADJ = 0.5, 0.25  # supply tick mix; the rest is inbound
P_STALE = 0.02
P_DRIFT = 0.15
P_RECEIVED, P_PARTIAL = 0.85, 0.2
SNAPSHOT_MS = 60_000  # the opening stock counts

# -- master data and noise -------------------------------------------------------------
POLICY_SHARE = 0.3  # of the SKU x DC pairs
P_DUP = 0.005  # a line re-sent as an exact duplicate


def cumulative(weights) -> list[float]:
    """The running shares of `weights`, ending at exactly 1.0: `bisect(cum, random())` draws
    an index with probability proportional to its weight."""
    out, acc = [], 0.0
    total = float(sum(weights))
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out


def mean_of(cum, values) -> float:
    """The expected value of `values` drawn with the cumulative shares `cum`."""
    prev, m = 0.0, 0.0
    for c, v in zip(cum, values):
        m += (c - prev) * v
        prev = c
    return m
