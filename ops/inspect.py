"""`stockflow inspect`: one SKU as the read side shows it, from a running engine's read model
in Redis, or from the pure engine run over a trace file (no Bytewax, no servers)."""

from __future__ import annotations

import json

import redis

from stockflow.connectors.read_model_reader import ReadModelReader
from stockflow.connectors.trace_file import read_events
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.node_position import SkuReport, sku_report

from .config import Config, load
from .masking import masked_url
from .sku_view import report_json, report_table


class InspectError(Exception):
    """What `inspect` cannot show, said in one line."""


def inspect(sku: str, node: str | None, config_path: str | None, events: str | None,
            as_json: bool) -> str:
    """The text `stockflow inspect` prints: a table, or JSON."""
    config = load(config_path)
    if events is not None:  # the engine's settings ([engine]) come from the same place
        report = from_events(events, sku, config.engine)
    else:
        report = from_redis(config, sku)
    only_node(report, node)
    if as_json:
        return json.dumps(report_json(report, node), indent=2)
    return report_table(report, node)


def from_redis(config: Config, sku: str) -> SkuReport:
    from .live import redis_client  # here: reading Redis needs nothing of the engine's run

    try:
        reader = ReadModelReader(redis_client(config), config.redis.prefix,
                                 config.redis.heartbeat_stale_s)
        report = reader.sku(sku)
    except redis.RedisError as exc:
        raise InspectError(f"cannot read the read model at {masked_url(config.redis.url)}: "
                           f"{exc}") from None
    if report is None:
        raise InspectError(f"unknown SKU {sku!r}: the engine has published nothing for it in "
                           f"{masked_url(config.redis.url)} (prefix {config.redis.prefix!r})")
    return report


def from_events(path: str, sku: str, config: EngineConfig) -> SkuReport:
    """Replay `path` through the pure engine; the SKU's report from the ledger at the end."""
    engine = Engine(config)
    for events in read_events(path):
        engine.process(events)
    for ledger in engine.ledgers.values():
        book = ledger.books.get(sku)
        if book is not None:
            return sku_report(sku, book, ledger.catalog.channels, ledger.horizon_ms,
                              ledger.smart, ledger.clock_ms)
    raise InspectError(f"unknown SKU {sku!r}: no event of {path} names it")


def only_node(report: SkuReport, node: str | None) -> None:
    """Raises unless `node` (if given) has a position for the SKU."""
    if node is not None and node not in report.positions:
        known = ", ".join(sorted(report.positions)) or "none"
        raise InspectError(f"SKU {report.sku!r} has no position at node {node!r} "
                           f"(nodes: {known})")
