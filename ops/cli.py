"""The `stockflow` command. Bad arguments get one readable line, never a traceback."""

from __future__ import annotations

import json
import sys
import tempfile

import msgspec

from stockflow.state.config import EngineConfig
from stockflow.state.events import input_schema
from stockflow.state.outputs import output_schema

from .cli_parser import UsageError, build_parser
from .config import Config, LogSettings
from .generate import Scenario
from .logs import QUIET, configure
from .masking import mask, masked_url
from .parent_death import die_with_launcher
from .replay import ReplayError


def main(argv: list[str] | None = None) -> int:
    try:
        die_with_launcher()  # a worker of `--processes N`: not one moment without the tie
        args = build_parser().parse_args(argv)
        configure(args.log_level or QUIET, args.log_format or LogSettings().format)
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        print(mask(str(exc)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except _formation_error() as exc:  # the launcher of a local cluster tries again
        print(mask(f"stockflow: error: {exc}"), file=sys.stderr)
        from .cluster import FORMATION_FAILED

        return FORMATION_FAILED
    except BrokenPipeError:
        return 0
    except _readable_errors() as exc:
        print(mask(f"stockflow: error: {_root_cause(exc)}"), file=sys.stderr)
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
                        wos_protection=args.wos_protection,
                        regional_reserve_weeks=args.regional_reserve_weeks)


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
    from .generate import check_scenario, fit_catalogue

    scenario = Scenario(events=args.events, seed=args.seed, skus=args.skus or Scenario().skus,
                        stores=args.stores, malformed_rate=args.malformed_rate)
    if args.skus is None:  # the default catalogue, cut down to a trace too small for it
        scenario = fit_catalogue(scenario)
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
    from .explain import explain, explain_recorded
    from .explain_report import render

    if args.events is not None:
        if args.config is not None:
            raise UsageError("stockflow explain: --events or --config, not both")
        explanation = explain(args.order_id, args.events, _engine_config(args), args.chunk_lines)
    else:
        explanation = _explain_recorded(args, explain_recorded)
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(explanation), indent=2).decode())
    else:
        print(render(explanation))
    return 0


def _explain_recorded(args, explain_recorded):
    """From the topics a running engine reads, with the engine settings it runs with (its
    config's `[engine]`): an engine flag given here would explain another engine."""
    from stockflow.connectors.recorded_input import recorded_input

    from .config import load

    if _engine_config(args) != EngineConfig():
        raise UsageError("stockflow explain: engine flags go with --events; from the recorded "
                         "topics the engine's own settings ([engine] of --config) apply")
    config = load(args.config)
    k = config.kafka
    messages, stamps = recorded_input(k.brokers, k.topic_prefix, k.client, config.run.max_ahead_s)
    where = f"the topics {k.topic_prefix}{{master,stock,orders,checkout-intake}} at {k.brokers}"
    return explain_recorded(args.order_id, messages, where, config.engine, args.chunk_lines,
                            stamps, config.run.max_ahead_s)


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
    from stockflow.connectors.kafka_admin import (
        create_topics,
        input_topics,
        journal_topic,
        master_topic,
        output_topics,
    )

    from .config import load

    from stockflow.connectors.recovery_marks import marks_topic

    k = load(args.config).kafka
    names = (input_topics(k.topic_prefix) + output_topics(k.topic_prefix)
             + [journal_topic(k.topic_prefix)])
    # Master data is a few thousand messages a day: one partition; the rest `partitions`.
    counts = {name: 1 if name == master_topic(k.topic_prefix) else k.partitions for name in names}
    created = create_topics(k.brokers, counts, replication=k.replication, client_config=k.client)
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
        raise RuntimeError(f"cannot install the reservation API in "
                           f"{masked_url(config.redis.url)}: {exc}")
    where = f"{len(nodes)} primaries ({', '.join(nodes)})" if config.redis.cluster else \
        masked_url(config.redis.url)
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
    if args.staleness:
        from .bench.report import print_staleness
        from .bench.staleness import run_staleness

        results = run_staleness(args.out, args.events, args.redis_url)
        print(json.dumps(results, indent=2)) if args.json else print_staleness(results)
        return 0
    if args.latency_floor:
        from .bench.floor import run_latency_floor
        from .bench.report import print_floor

        results = run_latency_floor(args.out, args.events, args.redis_url)
        print(json.dumps(results, indent=2)) if args.json else print_floor(results)
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
    from .whatif.policy import PolicyError, load_policy
    from .whatif.report import as_json, plot, print_table

    if args.supply is not None and not args.closed_loop:
        raise PolicyError("--supply needs --closed-loop: a plain what-if keeps the trace's supply")
    policies = [load_policy(path) for path in args.policy]
    supply = (args.supply or "recorded") if args.closed_loop else None
    columns = compare(args.trace, policies, args.out, show_progress=not args.quiet,
                      recorded=args.recorded, supply=supply)
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
