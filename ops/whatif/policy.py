"""A what-if policy: a TOML file of engine settings and master-data overrides.

Its name is the file's stem. The overrides change the trace's own master events as they are
replayed; the engine settings are `EngineConfig`'s. A bad file or an unknown setting is one
`PolicyError` line naming the file and the setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from stockflow.state.config import EngineConfig, RankAspect, check_rank
from stockflow.state.events import Count, Id, Share, SupplyKind, SupplyTerms
from stockflow.state.supply_side import SupplySideSettings

from ..config import read_toml


class PolicyError(Exception):
    """A policy that cannot be used; the message is one readable line."""


class ChannelOverride(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields of `channel.upserted` to replace; what is not given stays as recorded."""

    nodes: Annotated[list[Id], Meta(min_length=1)] | None = None
    hold_ttl_s: Annotated[float, Meta(gt=0)] | None = None
    allow_split: bool | None = None
    backorder: bool | None = None
    wos_weeks: Annotated[float, Meta(ge=0)] | None = None
    # which inbound supply the channel may promise, by kind; {} for stock on hand only
    supply: dict[SupplyKind, SupplyTerms] | None = None


class NodeOverride(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields of `node.upserted` to replace; what is not given stays as recorded."""

    ship_cost: Annotated[float, Meta(ge=0)] | None = None
    active: bool | None = None
    can_ship: bool | None = None
    can_pickup: bool | None = None
    snapshot_guard_share: Share | None = None
    snapshot_guard_units: Count | None = None


class SafetyStock(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Safety stock for every SKU x node the trace stocks but gives no `policy.upserted`.
    default: Count | None = None
    # The trace's own `policy.upserted` safety stock times this, rounded to a whole unit.
    scale: Annotated[float, Meta(ge=0)] = 1.0


class Replenishment(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # A reorder point (and order-up-to) for every SKU x node the trace stocks but gives no
    # `policy.upserted` (its safety stock: [safety_stock] default, else 0).
    reorder_point: Count | None = None
    order_up_to: Count | None = None


class Sourcing(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rank: tuple[RankAspect, ...] | None = None  # EngineConfig.sourcing_rank

    def __post_init__(self) -> None:
        if self.rank is not None:
            check_rank(self.rank, "rank")


class Policy(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    engine: EngineConfig = EngineConfig()
    channels: dict[str, ChannelOverride] = {}  # by channel id; "*" for every channel
    nodes: dict[str, NodeOverride] = {}
    safety_stock: SafetyStock = SafetyStock()
    sourcing: Sourcing = Sourcing()
    replenishment: Replenishment = Replenishment()
    # How the simulated ERP and WMS answer the engine in closed loop (`--closed-loop`).
    supply_side: SupplySideSettings = SupplySideSettings()

    def engine_config(self) -> EngineConfig:
        """The engine's settings, with the sourcing rank if the policy names one."""
        if self.sourcing.rank is None:
            return self.engine
        return msgspec.structs.replace(self.engine, sourcing_rank=self.sourcing.rank)

    def changes_events(self) -> bool:
        """Whether replaying under this policy rewrites any of the trace's events."""
        return bool(self.channels or self.nodes or self.safety_stock.default is not None
                    or self.safety_stock.scale != 1.0
                    or self.replenishment.reorder_point is not None)


class NamedPolicy(Struct, frozen=True):
    name: str  # the file's stem: the column's title
    path: str
    policy: Policy


def load_policy(path: str) -> NamedPolicy:
    """The policy in a TOML file, validated."""
    raw = read_toml(path, "policy", PolicyError)
    if "sourcing_rank" in raw.get("engine", {}) and "rank" in raw.get("sourcing", {}):
        raise PolicyError(f"policy {path}: give the rank once, as [sourcing] rank")
    try:
        _check_tables(raw)
        policy = msgspec.convert(raw, Policy)
    except msgspec.ValidationError as exc:
        raise PolicyError(f"bad setting in policy {path}: {exc}") from None
    return NamedPolicy(Path(path).stem, path, policy)


def _check_tables(raw: dict) -> None:
    """Each `[channels.<id>]` / `[nodes.<id>]` on its own, so an error names its id (msgspec
    says `$.channels[...]` for a value in a dict)."""
    for table, kind in (("channels", ChannelOverride), ("nodes", NodeOverride)):
        entries = raw.get(table)
        if not isinstance(entries, dict):
            continue  # not a table: the whole policy's conversion says so
        for key, value in entries.items():
            try:
                msgspec.convert(value, kind)
            except msgspec.ValidationError as exc:
                where, text = f"`$.{table}.{key}", str(exc)
                text = text.replace("`$", where, 1) if "`$" in text else f"{text} - at {where}`"
                raise msgspec.ValidationError(text) from None


def check_names(named: NamedPolicy, channels: set[str], nodes: set[str]) -> None:
    """Every channel and node a policy overrides is one the trace has (a typo is an error)."""
    policy, path = named.policy, named.path
    for channel_id, override in policy.channels.items():
        if channel_id != "*" and channel_id not in channels:
            raise PolicyError(f"policy {path}: [channels.{channel_id}] is no channel of the "
                              f"trace (it has: {', '.join(sorted(channels)) or 'none'})")
        for node_id in override.nodes or ():
            if node_id != "*" and node_id not in nodes:
                raise PolicyError(f"policy {path}: [channels.{channel_id}] nodes names "
                                  f"{node_id!r}, no node of the trace")
    for node_id in policy.nodes:
        if node_id not in nodes:
            raise PolicyError(f"policy {path}: [nodes.{node_id}] is no node of the trace "
                              f"(it has: {', '.join(sorted(nodes)) or 'none'})")
