"""The `stockflow` command. Bad arguments get one readable line, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

import msgspec

from stockflow.state.config import EngineConfig
from stockflow.state.events import input_schema
from stockflow.state.outputs import output_schema

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


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--buckets", type=_positive, default=64, help="ledger buckets (keyed state)")
    p.add_argument("--inbound-horizon", type=_seconds, default=3 * 86400,
                   help="seconds ahead an inbound ETA still counts as sellable")
    p.add_argument("--chunk-lines", type=_positive, default=2048, help="lines read per chunk")
    p.add_argument("--snapshot-guard-share", type=_rate, metavar="SHARE",
                   help="quarantine a stock.snapshot that drops on hand by more than this share "
                        "and lies below what is committed, until approved (default: off)")
    p.add_argument("--snapshot-guard-units", type=_units, default=0, metavar="UNITS",
                   help="...and lies more than this many units below it (default: 0)")
    p.add_argument("--transfer-lead", type=_seconds, default=_ENGINE.transfer_lead_s,
                   metavar="SECONDS", help="a transfer is due at its destination this long "
                   f"after it is asked for (default: {_ENGINE.transfer_lead_s:g})")
    p.add_argument("--transfer-ttl", type=_number(float, "seconds", 1),
                   default=_ENGINE.transfer_ttl_s, metavar="SECONDS",
                   help="a transfer not shipped this long after it is asked for expires "
                        f"(default: {_ENGINE.transfer_ttl_s:g})")
    p.add_argument("--rebalance-cover-weeks", type=_number(float, "weeks", 0.001),
                   metavar="WEEKS", help="rebalancing: send stock to a region whose stock "
                   "covers fewer weeks of its orders than this (default: off)")
    p.add_argument("--rebalance-surplus-weeks", type=_weeks,
                   default=_ENGINE.rebalance_surplus_weeks, metavar="WEEKS",
                   help="...from a region, of what it has beyond this many weeks of cover "
                        f"(default: {_ENGINE.rebalance_surplus_weeks:g})")
    p.add_argument("--rebalance-window-days", type=_days,
                   default=_ENGINE.rebalance_window_days, metavar="DAYS",
                   help="...weekly orders read from this many days "
                        f"(default: {_ENGINE.rebalance_window_days})")
    p.add_argument("--rebalance-min-units", type=_positive,
                   default=_ENGINE.rebalance_min_units, metavar="UNITS",
                   help="...judging only regions that ordered at least this many units in them "
                        f"(default: {_ENGINE.rebalance_min_units})")


def _generator_args(p: argparse.ArgumentParser, events: int) -> None:
    p.add_argument("--events", type=_positive, default=events, help="about how many events")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--skus", type=_positive, default=2000)
    p.add_argument("--stores", type=_positive, default=24)
    p.add_argument("--malformed-rate", type=_rate, default=0.0005)


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
    _generator_args(p, events=100_000)

    p = sub.add_parser("demo", help="generate a scenario, replay it, print what happened")
    p.add_argument("--out", help="directory for the trace and outputs (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    _generator_args(p, events=200_000)
    _engine_args(p)

    p = sub.add_parser("run", help="run live: Kafka topics in and out, Redis read model")
    p.add_argument("--config", help="TOML settings (STOCKFLOW_* environment variables override)")
    p.add_argument("--processes", "-p", type=_positive, default=1, help="worker processes")
    p.add_argument("--drain", action="store_true",
                   help="stop at the end of the input topics instead of waiting for more")
    p.add_argument("--from-scratch", action="store_true",
                   help="start a new recovery store although the output topics hold commands "
                        "(every input is processed again; consumers drop repeats by id)")
    p.add_argument("--process-id", "-i", type=int,
                   help="this process's index in a cluster of processes on several hosts")
    p.add_argument("--addresses", "-a",
                   help="the cluster's host:port of every process, in process-id order, "
                        "separated by ';' (with --process-id)")

    p = sub.add_parser("topics", help="Kafka topics")
    p.add_argument("action", choices=["create"])
    p.add_argument("--config", help="TOML settings (STOCKFLOW_* environment variables override)")

    p = sub.add_parser("redis", help="the reservation API in Redis")
    p.add_argument("action", choices=["install"])
    p.add_argument("--config", help="TOML settings (STOCKFLOW_* environment variables override)")

    p = sub.add_parser("bench", help="benchmarks, side by side in one run (see README)")
    p.add_argument("--out", default="bench-results", help="directory for results.json, bench.png")
    p.add_argument("--events", type=_positive, default=200_000, help="size of the workload")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="PostgreSQL for the row-lock allocator")
    p.add_argument("--baseline-lines", type=_positive, default=50_000,
                   help="order lines each alternative allocator runs")
    p.add_argument("--state-entries", type=_positive, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="fewer client counts, shorter loads")
    p.add_argument("--json", action="store_true", help="print results.json instead of a table")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--scale", action="store_true",
                   help="only the scale-out measurements and plan (<out>/scale.json)")

    p = sub.add_parser("schema", help="print the JSON Schema of the contract's events")
    p.add_argument("which", nargs="?", choices=["inputs", "outputs", "all"], default="all")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
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
                        rebalance_min_units=args.rebalance_min_units)


def _replay(args) -> int:
    from .replay import replay, run_cluster_member
    from .report import print_summary
    from .summary import summarize

    config = _engine_config(args)
    if args.process_id is not None:
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
    from .generate import Scenario, check_scenario

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
    config = load(args.config)
    run(config, args.processes, args.process_id, addresses, args.config, args.drain,
        args.from_scratch)
    return 0


def _topics(args) -> int:
    from stockflow.connectors.kafka_admin import create_topics, input_topics, output_topics

    from .config import load

    k = load(args.config).kafka
    names = input_topics(k.topic_prefix) + output_topics(k.topic_prefix)
    created = create_topics(k.brokers, names, k.partitions, k.replication, k.client)
    for name in names:
        print(f"{name}: {'created' if name in created else 'exists'}")
    return 0


def _redis(args) -> int:
    import redis

    from stockflow.connectors.reservations import install

    from .config import load
    from .live import redis_client

    config = load(args.config)
    try:
        install(redis_client(config))
    except redis.RedisError as exc:
        raise RuntimeError(f"cannot install the reservation API in {config.redis.url}: {exc}")
    print(f"reservation API installed in {config.redis.url} (FCALL stockflow_reserve ...)")
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


_COMMANDS = {"replay": _replay, "generate": _generate, "demo": _demo, "schema": _schema,
             "run": _run, "topics": _topics, "redis": _redis, "bench": _bench}


def _readable_errors() -> tuple[type[BaseException], ...]:
    from .config import ConfigError
    from .live import LiveError

    return (OSError, msgspec.ValidationError, ReplayError, ConfigError, LiveError, RuntimeError)

if __name__ == "__main__":
    sys.exit(main())
