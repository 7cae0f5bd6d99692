"""The `stockflow` command. Bad arguments get one readable line, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from typing import get_args

import msgspec

from stockflow.connectors.files import CHUNK_LINES
from stockflow.state.config import EngineConfig
from stockflow.state.events import input_schema
from stockflow.state.outputs import output_schema

from .bench.settings import BenchSettings
from .config import Config, LogFormat, LogLevel, LogSettings
from .generate import DEMO, GENERATED, Scenario
from .logs import QUIET, configure
from .replay import ReplayError


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
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
    p.add_argument("--no-wos-protection", dest="wos_protection", action="store_false",
                   default=engine.wos_protection,
                   help="keep no channel's weeks of supply from the others (its demand is "
                        "still learnt, and what they sell of it counted: alert wos_sold_away)")


def _generator_args(p: argparse.ArgumentParser, scenario: Scenario) -> None:
    p.add_argument("--events", type=_positive, default=scenario.events,
                   help="about how many events")
    p.add_argument("--seed", type=int, default=scenario.seed)
    p.add_argument("--skus", type=_positive, default=scenario.skus)
    p.add_argument("--stores", type=_positive, default=scenario.stores)
    p.add_argument("--malformed-rate", type=_rate, default=scenario.malformed_rate)


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
                   help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=_number(int, "a port", 1, 65535), default=8080,
                   help="port to listen on (default: %(default)s)")

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

    p = sub.add_parser("whatif", help="replay a trace under each policy, compare the decisions")
    p.add_argument("trace", help="recorded events (.jsonl or .jsonl.gz)")
    p.add_argument("--policy", action="append", required=True, metavar="FILE.toml",
                   help="a policy (repeat for more); with one, the trace as recorded comes first")
    p.add_argument("--json", metavar="OUT", help="write every figure to OUT as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="draw the main ratios to OUT.png")
    p.add_argument("--out", metavar="DIR",
                   help="keep each run's events and outputs under DIR/<policy> (default: none)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    p = sub.add_parser("explain", help="replay a trace and say how one order was sourced")
    p.add_argument("order_id", metavar="ORDER_ID")
    p.add_argument("--events", required=True, metavar="TRACE",
                   help="the events file (.jsonl or .jsonl.gz) that carries the order")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    _engine_args(p)

    p = sub.add_parser("schema", help="print the JSON Schema of the contract's events")
    p.add_argument("which", nargs="?", choices=["inputs", "outputs", "all"], default="all")
    for p in sub.choices.values():
        _log_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        configure(args.log_level or QUIET, args.log_format or LogSettings().format)
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except _formation_error() as exc:  # the launcher of a local cluster tries again
        print(f"stockflow: error: {exc}", file=sys.stderr)
        from .cluster import FORMATION_FAILED

        return FORMATION_FAILED
    except BrokenPipeError:
        return 0
    except _readable_errors() as exc:
        print(f"stockflow: error: {_root_cause(exc)}", file=sys.stderr)
        return 1


def _root_cause(exc: BaseException) -> BaseException:
    """A step that failed inside Bytewax arrives wrapped ("error calling on_batch in step
    ..."): the line worth reading is the first cause's."""
    while exc.__cause__ is not None and type(exc).__module__.startswith("bytewax"):
        exc = exc.__cause__
    return exc


def _engine_config(args) -> EngineConfig:
    return EngineConfig(buckets=args.buckets, inbound_horizon_s=args.inbound_horizon,
                        snapshot_guard_share=args.snapshot_guard_share,
                        snapshot_guard_units=args.snapshot_guard_units,
                        transfer_lead_s=args.transfer_lead, transfer_ttl_s=args.transfer_ttl,
                        rebalance_cover_weeks=args.rebalance_cover_weeks,
                        rebalance_surplus_weeks=args.rebalance_surplus_weeks,
                        rebalance_window_days=args.rebalance_window_days,
                        rebalance_min_units=args.rebalance_min_units,
                        wos_protection=args.wos_protection)


def _replay(args) -> int:
    from .replay import member_engine, replay, run_cluster_member
    from .report import print_summary
    from .summary import summarize

    config = _engine_config(args)
    if args.process_id is not None:
        config = member_engine(config)
        run_cluster_member(args.events, args.out, config, args.chunk_lines,
                           args.process_id, args.addresses.split(";"))
        return 0
    observer = None
    if args.metrics:
        from .metrics import Observer

        observer = Observer()
    seconds = replay(args.events, args.out, config, args.processes, args.chunk_lines, observer,
                     show_progress=not args.quiet)
    if args.metrics:
        from .metrics import write_metrics

        write_metrics(args.metrics)
    if args.summary or args.json:
        if args.events == "-":
            raise UsageError("stockflow replay: --summary needs an events file, not stdin")
        print_summary(summarize(args.events, args.out, seconds), as_json=args.json)
    elif not args.quiet:
        print(f"replayed {args.events} in {seconds:.2f}s; outputs in {args.out}", file=sys.stderr)
    return 0


def _generate(args) -> int:
    from .generate import write_jsonl
    from .progress import progress

    scenario = _scenario(args)
    if args.out == "-":
        write_jsonl(scenario, sys.stdout.buffer)
        return 0
    with open(args.out, "wb") as f, progress("generating", scenario.events, "events",
                                             not args.quiet) as advance:
        n = write_jsonl(scenario, f, advance)
    if not args.quiet:
        print(f"wrote {n} events to {args.out}", file=sys.stderr)
    return 0


def _scenario(args):
    from .generate import check_scenario

    scenario = Scenario(events=args.events, seed=args.seed, skus=args.skus, stores=args.stores,
                        malformed_rate=args.malformed_rate)
    try:
        check_scenario(scenario)
    except ValueError as exc:
        raise UsageError(f"stockflow {args.command}: {exc}") from None
    return scenario


def _demo(args) -> int:
    from .demo import run_demo

    out = args.out or tempfile.mkdtemp(prefix="stockflow-demo-")
    run_demo(_scenario(args), _engine_config(args), out, args.chunk_lines, as_json=args.json,
             show_progress=not args.quiet)
    return 0


def _explain(args) -> int:
    from .explain import explain
    from .explain_report import render

    explanation = explain(args.order_id, args.events, _engine_config(args), args.chunk_lines)
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(explanation), indent=2).decode())
    else:
        print(render(explanation))
    return 0


def _schema(args) -> int:
    schema = {"inputs": input_schema(), "outputs": output_schema()}
    print(json.dumps(schema if args.which == "all" else schema[args.which], indent=2))
    return 0


def _run(args) -> int:
    from .config import load
    from .live import run

    addresses = args.addresses.split(";") if args.addresses else None
    if (args.process_id is None) != (addresses is None):
        raise UsageError("stockflow run: --process-id and --addresses go together (see --help)")
    if addresses is not None and not 0 <= args.process_id < len(addresses):
        raise UsageError(f"stockflow run: --process-id {args.process_id} is not one of the "
                         f"{len(addresses)} --addresses")
    config = _with_log_args(load(args.config), args)
    configure(config.log.level, config.log.format)
    run(config, args.processes, args.process_id, addresses, args.config, args.drain,
        args.from_scratch)
    return 0


def _with_log_args(config: Config, args) -> Config:
    """The config with --log-level / --log-format over its `[log]`: what `run` logs at, and
    what the worker processes it starts are told."""
    log = msgspec.structs.replace(config.log, **{
        name: value for name, value in (("level", args.log_level), ("format", args.log_format))
        if value is not None})
    return msgspec.structs.replace(config, log=log)


def _inspect(args) -> int:
    from .inspect import inspect

    print(inspect(args.sku, args.node, args.config, args.events, args.json))
    return 0


def _api(args) -> int:
    from .api import serve_api

    serve_api(args.config, args.host, args.port)
    return 0


def _topics(args) -> int:
    from stockflow.connectors.kafka_admin import create_topics, input_topics, output_topics

    from .config import load

    from stockflow.connectors.recovery_marks import marks_topic

    k = load(args.config).kafka
    names = input_topics(k.topic_prefix) + output_topics(k.topic_prefix)
    created = create_topics(k.brokers, names, k.partitions, k.replication, k.client)
    marks = marks_topic(k.topic_prefix)  # one partition, compacted: see recovery_marks
    created += create_topics(k.brokers, {marks: 1}, replication=k.replication,
                             client_config=k.client, topic_config={"cleanup.policy": "compact"})
    for name in names + [marks]:
        print(f"{name}: {'created' if name in created else 'exists'}")
    return 0


def _redis(args) -> int:
    import redis

    from stockflow.connectors.reservations import install

    from .config import load
    from .live import redis_client

    config = load(args.config)
    try:
        nodes = install(redis_client(config))
    except redis.RedisError as exc:
        raise RuntimeError(f"cannot install the reservation API in {config.redis.url}: {exc}")
    where = f"{len(nodes)} primaries ({', '.join(nodes)})" if config.redis.cluster else \
        config.redis.url
    print(f"reservation API installed in {where} (FCALL stockflow_reserve ...)")
    return 0


def _bench(args) -> int:
    from pathlib import Path

    from .bench.report import markdown, plot, print_table, print_scale
    from .bench.run import run_bench

    if args.scale:
        from .bench.scale import run_scale_bench

        results = run_scale_bench(args.out, args.events, args.redis_url)
        print(json.dumps(results, indent=2)) if args.json else print_scale(results)
        return 0
    results = run_bench(args.out, args.events, args.redis_url, args.postgres,
                        args.baseline_lines, args.state_entries, args.quick,
                        show_progress=not args.quiet)
    plot(results, Path(args.out) / "bench.png")
    (Path(args.out) / "results.md").write_text(markdown(results) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
        print(f"results: {args.out}/results.json, {args.out}/results.md, {args.out}/bench.png",
              file=sys.stderr)
    return 0


def _whatif(args) -> int:
    from .whatif.compare import compare
    from .whatif.policy import load_policy
    from .whatif.report import as_json, plot, print_table

    policies = [load_policy(path) for path in args.policy]
    columns = compare(args.trace, policies, args.out, show_progress=not args.quiet)
    print_table(args.trace, columns)
    if args.json:
        with open(args.json, "wb") as f:
            f.write(as_json(args.trace, columns))
    if args.plot:
        plot(args.trace, columns, args.plot)
    return 0


_COMMANDS = {"replay": _replay, "generate": _generate, "demo": _demo, "schema": _schema,
             "run": _run, "inspect": _inspect, "explain": _explain, "api": _api, "topics": _topics,
             "redis": _redis, "bench": _bench, "whatif": _whatif}


def _formation_error() -> type[BaseException]:
    from .live import FormationError

    return FormationError


def _readable_errors() -> tuple[type[BaseException], ...]:
    from .config import ConfigError
    from .explain import ExplainError
    from .inspect import InspectError
    from .live import LiveError
    from .whatif.policy import PolicyError

    return (OSError, msgspec.ValidationError, ReplayError, ExplainError, ConfigError, LiveError,
            RuntimeError, PolicyError, InspectError)

if __name__ == "__main__":
    sys.exit(main())
