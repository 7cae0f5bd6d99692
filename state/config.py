"""The engine's own settings: the rules' knobs, not how it is run."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

# What sourcing prefers among eligible nodes, first to last (node id breaks any tie left).
RankAspect = Literal["whole_line", "region", "distance", "cost"]
DEFAULT_RANK: tuple[RankAspect, ...] = ("whole_line", "region", "distance", "cost")


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # SKUs are spread over this many ledger buckets (keyed state); fixed for a state's life.
    buckets: Annotated[int, Meta(ge=1, le=65536)] = 64
    # Inbound supply whose ETA is within this many seconds of the clock counts as sellable.
    inbound_horizon_s: Annotated[float, Meta(ge=0)] = 3 * 86400
    # Event ids are remembered this long (event time) to drop duplicates...
    dedup_window_s: Annotated[float, Meta(gt=0)] = 86400
    # ...and at most this many per window, so memory stays bounded under any input.
    dedup_max_ids: Annotated[int, Meta(ge=1)] = 2_000_000
    # Orders are remembered this long after creation for payments, cancels and resends.
    order_retention_s: Annotated[float, Meta(gt=0)] = 30 * 86400
    # The snapshot guard (off: None). A `stock.snapshot` that drops on hand by more than this
    # share of the ledger's count, and lies more than `snapshot_guard_units` below what is
    # committed there, is quarantined until `stock.snapshot.approved` / `.rejected` instead of
    # taking commitments back at once. A node's `snapshot_guard_share` / `_units` override these.
    snapshot_guard_share: Annotated[float, Meta(ge=0, le=1)] | None = None
    snapshot_guard_units: Annotated[int, Meta(ge=0)] = 0
    # Slow movers (slow_movers.py): a SKU whose units ordered in the last
    # `slow_mover_window_days` whole days fell by `slow_mover_drop` or more against the same
    # span before is alerted, once per fall; a drop above 1 (never reached) turns it off.
    # Below `slow_mover_min_units` units in the earlier span nothing is judged.
    slow_mover_window_days: Annotated[int, Meta(ge=1, le=366)] = 30
    slow_mover_drop: Annotated[float, Meta(gt=0)] = 0.4
    slow_mover_min_units: Annotated[int, Meta(ge=1)] = 20
    # Transfers (transfers.py): a `replenishment.requested` with `from_node` reserves its units
    # there and counts them in transit at its node, due `transfer_lead_s` after it was asked
    # for; one not shipped within `transfer_ttl_s` of event time expires (reserve released).
    transfer_lead_s: Annotated[float, Meta(ge=0)] = 2 * 86400
    transfer_ttl_s: Annotated[float, Meta(gt=0)] = 86400
    # Rebalancing (rebalancing.py), off unless `rebalance_cover_weeks` is set: once a day per
    # SKU, a region whose stock covers fewer weeks of its last `rebalance_window_days` of
    # orders than that (and which ordered at least `rebalance_min_units`) is sent a transfer
    # from the nearest region whose cover is above `rebalance_surplus_weeks`, of what lies
    # above it there.
    rebalance_cover_weeks: Annotated[float, Meta(gt=0)] | None = None
    rebalance_surplus_weeks: Annotated[float, Meta(ge=0)] = 8.0
    rebalance_window_days: Annotated[int, Meta(ge=1, le=366)] = 28
    rebalance_min_units: Annotated[int, Meta(ge=1)] = 4
    # Sourcing's order of preference (sourcing.py): each aspect once, in any order. The
    # default fills a line from one node when any can, then stays in the ship-to's region.
    sourcing_rank: tuple[RankAspect, ...] = DEFAULT_RANK
    # WOS protection (wos.py): a channel with `wos_weeks` keeps that many weeks of its own
    # demand out of other channels' reach. False: demand is still learnt and what other
    # channels sell of it is measured (alert `wos_sold_away`), but nothing is kept back.
    wos_protection: bool = True
    # Regional reserve (regional_reserve.py), off while None: each region keeps this many
    # weeks of its own customers' demand (fewer when its next inbound comes sooner), and lines
    # to other regions take only what lies beyond.
    regional_reserve_weeks: Annotated[float, Meta(gt=0)] | None = None
    # Sweeps (sweep.py): each time the clock crosses a multiple of this many seconds of event
    # time, every bucket catches up its SKUs that time alone changes (late transfers expire;
    # on a new day protection is republished, slow movers and rebalancing judged). It divides
    # a day, so every day begins with a sweep.
    sweep_interval_s: Annotated[int, Meta(ge=1, le=86400)] = 3600
    # The clock guard (clock_guard.py): an event stamped more than this far beyond the clock
    # is not taken on its own word; unless the next event confirms its time it is a dead
    # letter `ts_implausible`. Long enough for real lulls (Olist's quietest gap is 70 days).
    max_clock_jump_s: Annotated[float, Meta(gt=0)] = 90 * 86400
    # A clock move of more than this raises an alert `clock_jump` naming the event: past the
    # lulls of a real trace (Olist's longest but one is 20 days), short of a refusal.
    clock_jump_alert_s: Annotated[float, Meta(gt=0)] = 30 * 86400
    # Replenishment (replenishment.py): "fixed" asks at each policy's own reorder point;
    # "smart" (smart_replenishment.py) works a node's points out of the demand it met in the
    # last `demand_window_days` periods of `demand_period_s` (once it knows
    # `demand_min_days`), the supplier lead time `replenishment_lead_s`, the review period and
    # the service level.
    replenishment: Literal["fixed", "smart"] = "fixed"
    service_level: Annotated[float, Meta(ge=0.5, lt=1)] = 0.95
    review_period_s: Annotated[float, Meta(ge=0)] = 86400
    # None: learnt per node from its purchases, announcement to receipt (smart_replenishment.py)
    replenishment_lead_s: Annotated[float, Meta(gt=0)] | None = 5 * 86400
    demand_window_days: Annotated[int, Meta(ge=1, le=366)] = 28
    demand_min_days: Annotated[int, Meta(ge=1, le=366)] = 7
    demand_period_s: Annotated[int, Meta(ge=60, le=86400)] = 86400

    def __post_init__(self) -> None:
        check_rank(self.sourcing_rank, "sourcing_rank")
        if 86400 % self.sweep_interval_s:
            raise ValueError(
                f"sweep_interval_s must divide a day (86400 s), got {self.sweep_interval_s}")


def check_rank(rank: tuple[str, ...], name: str) -> None:
    """A sourcing rank names every aspect once (raises ValueError, which msgspec reports)."""
    if sorted(rank) != sorted(DEFAULT_RANK):
        raise ValueError(f"{name} names each of {', '.join(DEFAULT_RANK)} once, got {list(rank)}")
