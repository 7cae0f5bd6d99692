"""The `stockflow` command line: its subcommands, their arguments and defaults (taken from the
config types, so they cannot drift), and one readable line for a bad argument."""

from __future__ import annotations

import argparse
from typing import get_args

from stockflow.connectors.files import CHUNK_LINES
from stockflow.state.config import EngineConfig

from .bench.settings import BenchSettings
from .config import LogFormat, LogLevel
from .generate import DEMO, GENERATED, Scenario
from .logs import QUIET


class UsageError(Exception):
    pass


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in `--help`, unless its help already says it or it has none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default in (None, argparse.SUPPRESS)
                or isinstance(action.default, bool)):  # a flag: its help says what it does
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _number(convert, what: str, low: float, high: float | None = None):
    """An argparse type: `convert` the text, then check it lies in [low, high]."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {value}")
        return value
    return parse


_positive = _number(int, "a whole number", 1)
_units = _number(int, "a whole number", 0)
_rate = _number(float, "a share", 0, 1)
_seconds = _number(float, "seconds", 0)
_weeks = _number(float, "weeks", 0)
_days = _number(int, "a whole number of days", 1, 366)
_ENGINE = EngineConfig()  # the defaults of the rules' knobs below


# Every default below is read from the type that owns it (EngineConfig, Scenario,
# BenchSettings, Config), never written here again: a default kept twice drifts.

def _engine_args(p: argparse.ArgumentParser, engine: EngineConfig = EngineConfig()) -> None:
    p.add_argument("--buckets", type=_positive, default=engine.buckets,
                   help="ledger buckets (keyed state)")
    p.add_argument("--inbound-horizon", type=_seconds, default=engine.inbound_horizon_s,
                   help="seconds ahead an inbound ETA still counts as sellable")
    p.add_argument("--chunk-lines", type=_positive, default=CHUNK_LINES,
                   help="lines read per chunk")
    guard = "off" if engine.snapshot_guard_share is None else engine.snapshot_guard_share
    p.add_argument("--snapshot-guard-share", type=_rate, metavar="SHARE",
                   default=engine.snapshot_guard_share,
                   help="quarantine a stock.snapshot that drops on hand by more than this share "
                        f"and lies below what is committed, until approved (default: {guard})")
    p.add_argument("--snapshot-guard-units", type=_units, default=engine.snapshot_guard_units,
                   metavar="UNITS", help="...and lies more than this many units below it "
                                         f"(default: {engine.snapshot_guard_units})")
    p.add_argument("--transfer-lead", type=_seconds, default=engine.transfer_lead_s,
                   metavar="SECONDS", help="a transfer is due at its destination this long "
                   f"after it is asked for (default: {engine.transfer_lead_s:g})")
    p.add_argument("--transfer-ttl", type=_number(float, "seconds", 1),
                   default=engine.transfer_ttl_s, metavar="SECONDS",
                   help="a transfer not shipped this long after it is asked for expires "
                        f"(default: {engine.transfer_ttl_s:g})")
    p.add_argument("--rebalance-cover-weeks", type=_number(float, "weeks", 0.001),
                   metavar="WEEKS", help="rebalancing: send stock to a region whose stock "
                   "covers fewer weeks of its orders than this (default: off)")
    p.add_argument("--rebalance-surplus-weeks", type=_weeks,
                   default=engine.rebalance_surplus_weeks, metavar="WEEKS",
                   help="...from a region, of what it has beyond this many weeks of cover "
                        f"(default: {engine.rebalance_surplus_weeks:g})")
    p.add_argument("--rebalance-window-days", type=_days,
                   default=engine.rebalance_window_days, metavar="DAYS",
                   help="...weekly orders read from this many days "
                        f"(default: {engine.rebalance_window_days})")
    p.add_argument("--rebalance-min-units", type=_positive,
                   default=engine.rebalance_min_units, metavar="UNITS",
                   help="...judging only regions that ordered at least this many units in them "
                        f"(default: {engine.rebalance_min_units})")
    p.add_argument("--regional-reserve-weeks", type=_number(float, "weeks", 0.001),
                   default=engine.regional_reserve_weeks, metavar="WEEKS",
                   help="each region keeps this many weeks of its own customers' demand; "
                        "lines to other regions take only what lies beyond (default: off)")
    p.add_argument("--no-wos-protection", dest="wos_protection", action="store_false",
                   default=engine.wos_protection,
                   help="keep no channel's weeks of supply from the others (its demand is "
                        "still learnt, and what they sell of it counted: alert wos_sold_away)")


def _generator_args(p: argparse.ArgumentParser, scenario: Scenario) -> None:
    p.add_argument("--events", type=_positive, default=scenario.events,
                   help="about how many events")
    p.add_argument("--seed", type=int, default=scenario.seed, help="the random generator's seed")
    p.add_argument("--skus", type=_positive,
                   help=f"SKUs in the catalogue (default: {scenario.skus}, or as many as keep "
                        "master data and opening counts within half of a smaller trace)")
    p.add_argument("--stores", type=_positive, default=scenario.stores, help="stores")
    p.add_argument("--malformed-rate", type=_rate, default=scenario.malformed_rate,
                   help="share of lines written as malformed messages")


def _log_args(p: argparse.ArgumentParser) -> None:
    """--log-level / --log-format on every command; unset, `run` takes `[log]` from its
    config and the others show warnings only, so their output stays their own."""
    p.add_argument("--log-level", type=str.lower, choices=get_args(LogLevel),
                   help=f"log lines from this level up (default: [log] level for run, "
                        f"{QUIET} for the others)")
    p.add_argument("--log-format", type=str.lower, choices=get_args(LogFormat),
                   help="text (logfmt) or json, one object per line (default: [log] format "
                        "for run, text for the others)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stockflow")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stockflow", description="Real-time inventory engine.")
    parser.add_argument("--version", action="version", version=f"stockflow {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("replay", help="replay a JSON Lines event file through the engine")
    p.add_argument("events", help="events file (.jsonl or .jsonl.gz), or - for stdin")
    p.add_argument("--out", required=True, help="directory for <stream>.jsonl outputs")
    p.add_argument("--processes", "-p", type=_positive, default=1, help="worker processes")
    p.add_argument("--summary", action="store_true", help="print the decision-quality summary")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress, no closing line")
    p.add_argument("--metrics", metavar="FILE",
                   help="write the final Prometheus metrics (text format) to FILE")
    p.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    p.add_argument("--addresses", help=argparse.SUPPRESS)
    _engine_args(p)

    p = sub.add_parser("generate", help="write a synthetic omnichannel workload as JSON Lines")
    p.add_argument("--out", default="-", help="output file, or - for stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress, no closing line")
    _generator_args(p, GENERATED)

    p = sub.add_parser("demo", help="generate a scenario, replay it, print what happened")
    p.add_argument("--out", help="directory for the trace and outputs (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    _generator_args(p, DEMO)
    _engine_args(p)

    p = sub.add_parser("run", help="run live: Kafka topics in and out, Redis read model")
    p.add_argument("--config", help="TOML settings (STOCKFLOW_* environment variables override)")
    p.add_argument("--processes", "-p", type=_positive, default=1, help="worker processes")
    p.add_argument("--drain", action="store_true",
                   help="stop at the end of the input topics instead of waiting for more")
    p.add_argument("--from-scratch", action="store_true",
                   help="start a new recovery store although the output topics hold commands "
                        "or the store's partitions were made before (every input is processed "
                        "again; consumers drop repeats by id); give it to every process")
    p.add_argument("--process-id", "-i", type=int, metavar="I",
                   help="this process's index (0, 1, ...) in a cluster of processes on several "
                        "hosts: its place in --addresses; each keeps recovery partition I in "
                        "its own [recovery] dir")
    p.add_argument("--addresses", "-a", metavar="HOST:PORT;...",
                   help="every process's host:port, in process-id order, separated by ';', "
                        "the same list on every host (with --process-id); process I listens "
                        "on entry I and the others connect to it")

    p = sub.add_parser("inspect", help="one SKU: position per node, availability per channel")
    p.add_argument("sku")
    p.add_argument("--node", help="only this node's position")
    p.add_argument("--config", help="TOML settings (STOCKFLOW_* environment variables override)")
    p.add_argument("--events", metavar="TRACE",
                   help="replay this trace (.jsonl or .jsonl.gz) through the engine instead of "
                        "reading a running engine's read model in Redis")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("api", help="serve the read-only HTTP API from the read model in Redis")
    p.add_argument("--config", help="TOML settings (STOCKFLOW_* environment variables override)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on")
    p.add_argument("--port", type=_number(int, "a port", 1, 65535), default=8080,
                   help="port to listen on")

    p = sub.add_parser("topics", help="Kafka topics")
    p.add_argument("action", choices=["create"])
    p.add_argument("--config", help="TOML settings (STOCKFLOW_* environment variables override)")

    p = sub.add_parser("redis", help="the reservation API in Redis")
    p.add_argument("action", choices=["install"])
    p.add_argument("--config", help="TOML settings (STOCKFLOW_* environment variables override)")

    bench = BenchSettings()
    p = sub.add_parser("bench", help="benchmarks, side by side in one run (see README)")
    p.add_argument("--out", default=bench.out, help="directory for results.json, bench.png")
    p.add_argument("--events", type=_positive, default=bench.events, help="size of the workload")
    p.add_argument("--redis-url", default=bench.redis_url)
    p.add_argument("--postgres", default=bench.postgres,
                   help="PostgreSQL for the row-lock allocator")
    p.add_argument("--baseline-lines", type=_positive, default=bench.baseline_lines,
                   help="order lines each alternative allocator runs")
    p.add_argument("--state-entries", type=_positive, default=bench.state_entries)
    p.add_argument("--quick", action="store_true", help="fewer client counts, shorter loads")
    p.add_argument("--json", action="store_true", help="print results.json instead of a table")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--scale", action="store_true",
                   help="only the scale-out measurements and plan (<out>/scale.json)")
    p.add_argument("--staleness", action="store_true",
                   help="only checkout hold -> published availability, idle and at half load "
                        "(<out>/staleness.json; --events 40000 is plenty)")
    p.add_argument("--latency-floor", action="store_true",
                   help="only event -> command latency at low rates, where waits, not CPU, "
                        "set it (<out>/latency-floor.json; --events 40000 is plenty)")

    p = sub.add_parser("whatif", help="replay a trace under each policy, compare the decisions")
    p.add_argument("trace", help="recorded events (.jsonl or .jsonl.gz)")
    p.add_argument("--policy", action="append", required=True, metavar="FILE.toml",
                   help="a policy (repeat for more); each is compared with the trace as "
                        "recorded, the first column")
    p.add_argument("--no-recorded", dest="recorded", action="store_false",
                   help="leave out the as-recorded column (the first policy is then the one "
                        "the others are compared with)")
    p.add_argument("--json", metavar="OUT", help="write every figure to OUT as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="draw the main ratios to OUT.png")
    p.add_argument("--out", metavar="DIR",
                   help="keep each run's events and outputs under DIR/<policy> (default: none)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--closed-loop", action="store_true",
                   help="answer the engine's purchases, transfers and allocations with a "
                        "simulated ERP and WMS (the policy's [supply_side]); each run's input "
                        "is kept as DIR/<policy>/closed-loop.jsonl with --out")
    p.add_argument("--supply", choices=["recorded", "simulated"],
                   help="in closed loop: keep the trace's own inbound and receipts (recorded, "
                        "the default) or leave them out (simulated)")

    p = sub.add_parser("explain", help="replay a trace, or the input a running engine "
                                        "recorded in Kafka, and say how one order was sourced")
    p.add_argument("order_id", metavar="ORDER_ID")
    p.add_argument("--events", metavar="TRACE",
                   help="the events file (.jsonl or .jsonl.gz) that carries the order "
                        "(default: the input topics and checkout-intake journal of --config, "
                        "with its [engine] settings)")
    p.add_argument("--config", help="TOML settings of the running engine, for its topics "
                                    "(STOCKFLOW_* environment variables override)")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    _engine_args(p)

    p = sub.add_parser("schema", help="print the JSON Schema of the contract's events")
    p.add_argument("which", nargs="?", choices=["inputs", "outputs", "all"], default="all")
    for p in sub.choices.values():
        _log_args(p)
    return parser
