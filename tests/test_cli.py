"""The `stockflow` command: schema, replay (file and stdin), generate, demo, and bad arguments.

Most tests call `main([...])` in this process; a few run `python -m stockflow.ops.cli` as a
real process, for stdin and for what a user sees on the terminal.
"""

from __future__ import annotations

import argparse

import json
import subprocess
import sys
import typing
from pathlib import Path

import msgspec
import pytest

from stockflow.ops.cli import main
from stockflow.state.events import InputEvent
from stockflow.state.outputs import STREAMS, OutputEvent

from .scenario import Script
from .shared_data import EXAMPLES
CLI = [sys.executable, "-m", "stockflow.ops.cli"]


def tags(union) -> set[str]:
    return {t.__struct_config__.tag for t in typing.get_args(union)}


def lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, timeout=60)


# -- schema ------------------------------------------------------------------------------


def test_schema_prints_json_with_every_input_and_output_type(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema) == {"inputs", "outputs"}
    assert set(schema["inputs"]["discriminator"]["mapping"]) == tags(InputEvent)
    assert set(schema["outputs"]["discriminator"]["mapping"]) == tags(OutputEvent)
    # contract v1.1 (clock.tick), and stockflow's stock.snapshot.approved / .rejected,
    # transfer.shipped / .cancelled and checkout.taken (the engine's intake journal)
    assert len(tags(InputEvent)) == 18
    transfer = schema["inputs"]["$defs"]["TransferShipped"]
    assert set(transfer["required"]) >= {"command_id", "sku", "from_node", "to_node", "qty"}
    assert "transfer" in schema["outputs"]["$defs"]["Alert"]["properties"]


def test_schema_has_stockflows_supply_policy_and_promise_date(capsys):
    """Additions to contract v1.1: a channel's optional `supply` (per kind: share, horizon_s)
    and an order status's optional `promised_at`."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    channel = schema["inputs"]["$defs"]["Channel"]
    assert "supply" in channel["properties"] and "supply" not in channel["required"]
    terms = schema["inputs"]["$defs"]["SupplyTerms"]["properties"]
    assert set(terms) == {"share", "horizon_s"}
    assert (terms["share"]["minimum"], terms["share"]["maximum"]) == (0, 1)
    kinds = channel["properties"]["supply"]["anyOf"][0]["propertyNames"]["enum"]
    assert kinds == ["in_transit", "production", "purchase_order"]
    status = schema["outputs"]["$defs"]["OrderStatus"]
    assert "promised_at" in status["properties"] and "promised_at" not in status["required"]


def test_schema_can_print_only_the_inputs(capsys):
    assert main(["schema", "inputs"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["discriminator"]["mapping"]) == tags(InputEvent)


# -- replay ------------------------------------------------------------------------------


def test_replay_writes_the_decisions_to_stream_files(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["replay", str(EXAMPLES), "--out", str(out)]) == 0
    dispatch = [json.loads(line) for line in lines(out / "dispatch.jsonl")]
    assert [(d["type"], d["order_id"], d["node"], d["qty"]) for d in dispatch] == [
        ("dispatch.allocate", "DY-5", "DC-GZ", 1),
        ("dispatch.allocate", "TM-1001", "DC-SH", 2),
        ("dispatch.allocate", "POS-77", "ST-BJ-01", 1),
        ("dispatch.release", "DY-5", "DC-GZ", 1),
    ]
    decode = msgspec.json.Decoder(OutputEvent).decode
    statuses = [decode(line) for line in lines(out / "order-status.jsonl")]
    assert [(s.order_id, s.status) for s in statuses if s.order_id == "TM-1001"] == [
        ("TM-1001", "held"), ("TM-1001", "allocated"), ("TM-1001", "shipped"),
        ("TM-1001", "returned"),
    ]
    assert capsys.readouterr().out == ""  # without --summary the report goes to stderr


def test_replay_writes_all_six_stream_files(tmp_path):
    out = tmp_path / "out"
    assert main(["replay", str(EXAMPLES), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.jsonl" for s in STREAMS)


def test_replay_into_a_used_directory_does_not_keep_old_outputs(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(EXAMPLES.read_bytes() + b"this is not json\n")
    out = tmp_path / "out"
    assert main(["replay", str(bad), "--out", str(out)]) == 0
    assert len(lines(out / "dead-letter.jsonl")) == 1
    capsys.readouterr()
    assert main(["replay", str(EXAMPLES), "--out", str(out), "--summary", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dead_letters"] == 0


def test_replay_summary_json_parses(tmp_path, capsys):
    rc = main(["replay", str(EXAMPLES), "--out", str(tmp_path / "out"), "--summary", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["events"], summary["orders"], summary["lines"]) == (21, 3, 3)
    assert summary["dead_letters"] == 0
    assert summary["outputs"]["dispatch"] == 4
    assert summary["outputs"]["order-status"] == 7
    assert summary["final_status"]["returned"] == 1
    assert summary["final_status"]["cancelled"] == 1
    assert summary["final_status"]["allocated"] == 1


def test_replay_sends_a_malformed_line_to_the_dead_letters_and_goes_on(tmp_path):
    bad = tmp_path / "bad.jsonl"
    ex = EXAMPLES.read_bytes()
    bad.write_bytes(b'{"type":"order.paid","event_id":"x-1"}\n' + ex)
    out = tmp_path / "out"
    assert main(["replay", str(bad), "--out", str(out)]) == 0
    (dead,) = [json.loads(line) for line in lines(out / "dead-letter.jsonl")]
    assert dead["source"] == "bad.jsonl:1"
    assert dead["cause"] == "x-1"
    assert "missing required field" in dead["error"]
    assert len(lines(out / "dispatch.jsonl")) == 4


def test_replay_reads_stdin(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("replay", "-", "--out", str(out), stdin=EXAMPLES.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert len(lines(out / "order-status.jsonl")) == 7
    assert len(lines(out / "dispatch.jsonl")) == 4


def guard_trace(tmp_path):
    """6 units allocated at A, then a count of 0 there, then its approval."""
    e = Script()
    events = [e.node("A"), e.channel("web"), e.snapshot("K", "A", 10, seq=1),
              e.order("P1", [("K", 6)], paid=True),
              e.snapshot("K", "A", 0, seq=2, event_id="count-1"),
              e.approved("count-1", event_id="ok-1")]
    trace = tmp_path / "guard.jsonl"
    trace.write_bytes(b"".join(msgspec.json.encode(ev) + b"\n" for ev in events))
    return trace


def test_replay_can_turn_the_snapshot_guard_on(tmp_path):
    """A count of 0 under 6 allocated units waits for approval, then takes them back."""
    trace = guard_trace(tmp_path)

    assert main(["replay", str(trace), "--out", str(tmp_path / "on"), "--quiet",
                 "--snapshot-guard-share", "0.5", "--snapshot-guard-units", "2"]) == 0
    alerts = [json.loads(line) for line in lines(tmp_path / "on" / "alerts.jsonl")]
    assert [(a["kind"], a["cause"]) for a in alerts] == [
        ("snapshot_quarantined", "count-1"), ("drift", "ok-1"), ("shortage", "ok-1")]
    (release,) = [json.loads(line) for line in lines(tmp_path / "on" / "dispatch.jsonl")
                  if b"release" in line]
    assert release["cause"] == "ok-1"

    assert main(["replay", str(trace), "--out", str(tmp_path / "off"), "--quiet"]) == 0
    alerts = [json.loads(line) for line in lines(tmp_path / "off" / "alerts.jsonl")]
    assert [(a["kind"], a["cause"]) for a in alerts] == [
        ("drift", "count-1"), ("shortage", "count-1")]


# -- bad arguments -----------------------------------------------------------------------


BAD_ARGS = {
    "unknown command": ["bogus"],
    "no command": [],
    "buckets 0": ["replay", str(EXAMPLES), "--out", "{out}", "--buckets", "0"],
    "buckets x": ["replay", str(EXAMPLES), "--out", "{out}", "--buckets", "x"],
    "missing --out": ["replay", str(EXAMPLES)],
    "missing events file": ["replay", "{out}/no-such-events.jsonl", "--out", "{out}"],
    "stdin with 2 processes": ["replay", "-", "--out", "{out}", "--processes", "2"],
    "bad horizon": ["replay", str(EXAMPLES), "--out", "{out}", "--inbound-horizon", "-1"],
    "guard share above 1": ["replay", str(EXAMPLES), "--out", "{out}",
                            "--snapshot-guard-share", "1.5"],
    "negative guard units": ["replay", str(EXAMPLES), "--out", "{out}",
                             "--snapshot-guard-share", "0.5", "--snapshot-guard-units", "-1"],
    "unknown schema": ["schema", "everything"],
    "explain from the topics of no broker": ["explain", "O1"],
    "explain without an order": ["explain", "--events", str(EXAMPLES)],
    "explain a missing file": ["explain", "O1", "--events", "{out}/no-such-events.jsonl"],
    "explain a directory": ["explain", "O1", "--events", "{out}/.."],
    "explain an order not there": ["explain", "NOPE-404", "--events", str(EXAMPLES)],
    "negative transfer lead": ["replay", str(EXAMPLES), "--out", "{out}", "--transfer-lead", "-1"],
    "transfer ttl 0": ["replay", str(EXAMPLES), "--out", "{out}", "--transfer-ttl", "0"],
    "rebalance cover 0": ["replay", str(EXAMPLES), "--out", "{out}",
                          "--rebalance-cover-weeks", "0"],
    "rebalance window 0": ["replay", str(EXAMPLES), "--out", "{out}",
                           "--rebalance-window-days", "0"],
}


@pytest.mark.parametrize("args", BAD_ARGS.values(), ids=BAD_ARGS.keys())
def test_bad_arguments_fail_with_one_line_on_stderr(args, tmp_path, capsys):
    argv = [a.replace("{out}", str(tmp_path / "out")) for a in args]
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc not in (0, None)
    assert len(captured.err.splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_bad_argument_in_a_real_process_prints_one_line_and_no_traceback(tmp_path):
    proc = run_cli("replay", str(EXAMPLES), "--out", str(tmp_path), "--buckets", "x")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--buckets" in err


def test_missing_events_file_in_a_real_process_prints_one_line(tmp_path):
    proc = run_cli("replay", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "nope.jsonl" in err


def test_generate_with_too_few_events_for_the_skus_asked_fails_with_one_line(tmp_path):
    proc = run_cli("generate", "--events", "2000", "--skus", "2000",
                   "--out", str(tmp_path / "g.jsonl"))
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err


def test_generate_scales_its_default_catalogue_down_to_a_small_trace(tmp_path, capsys):
    out = tmp_path / "g.jsonl"
    assert main(["generate", "--events", "5000", "--seed", "5", "--out", str(out)]) == 0
    decode = msgspec.json.Decoder(InputEvent).decode
    events = [decode(line) for line in lines(out) if line.strip().startswith(b'{"type"')
              and b"malformed" not in line]
    skus = {e.sku for e in events if type(e).__name__ == "StockSnapshot"}
    orders = sum(type(e).__name__ == "OrderCreated" for e in events)
    assert 4750 <= len(lines(out)) <= 5250
    assert 50 <= len(skus) < 2000  # cut down, not to nothing...
    assert orders >= 1000  # ...leaving most of the trace to orders and supply


def test_every_commands_help_shows_its_defaults():
    from stockflow.ops.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if a.dest == "command"]
    for name, command in sub.choices.items():
        formatter = command._get_formatter()  # as `--help` prints each option
        for action in command._actions:
            if action.default in (None, argparse.SUPPRESS) or isinstance(action.default, bool):
                continue
            assert f"default: {action.default}" in formatter._expand_help(action) \
                or "(default: " in formatter._expand_help(action), \
                f"stockflow {name} --help: {action.option_strings or action.dest} shows no default"


# -- generate and demo -------------------------------------------------------------------

SMALL = ["--events", "2000", "--skus", "50", "--stores", "4"]


def test_generate_writes_a_valid_deterministic_workload(tmp_path, capsys):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["generate", *SMALL, "--malformed-rate", "0", "--out", str(first)]) == 0
    assert main(["generate", *SMALL, "--malformed-rate", "0", "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    raw = lines(first)
    assert 1800 <= len(raw) <= 2200
    decode = msgspec.json.Decoder(InputEvent).decode
    kinds = {type(decode(line)).__name__ for line in raw}
    assert {"NodeUpserted", "ChannelUpserted", "StockSnapshot", "OrderCreated"} <= kinds


def test_generate_to_stdout(capsysbinary):
    assert main(["generate", *SMALL]) == 0
    out = capsysbinary.readouterr().out
    assert 1800 <= len(out.splitlines()) <= 2200


def test_demo_prints_a_json_summary_of_its_run(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", *SMALL, "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == len(lines(out / "events.jsonl"))
    assert summary["orders"] > 0
    assert summary["outputs"]["order-status"] == len(lines(out / "out" / "order-status.jsonl"))
    assert summary["duplicates"] > 0  # the generated workload resends orders and events


# -- progress and quiet -------------------------------------------------------------------


def test_quiet_commands_print_nothing_but_their_outputs(tmp_path):
    trace = tmp_path / "t.jsonl"
    gen = run_cli("generate", "--events", "3000", "--skus", "100", "--stores", "4",
                  "--out", str(trace), "--quiet")
    assert gen.returncode == 0 and gen.stderr == b"" and gen.stdout == b""
    rep = run_cli("replay", str(trace), "--out", str(tmp_path / "out"), "--quiet")
    assert rep.returncode == 0 and rep.stderr == b"" and rep.stdout == b""


def test_a_terminal_sees_a_progress_bar_and_a_pipe_does_not(tmp_path):
    import os
    import pty

    args = [*CLI, "generate", "--events", "20000", "--out", str(tmp_path / "t.jsonl")]
    piped = subprocess.run(args, capture_output=True, timeout=60)
    assert piped.stderr.decode().strip() == f"wrote {count_lines(tmp_path / 't.jsonl')} events to {tmp_path / 't.jsonl'}"
    pid, fd = pty.fork()
    if pid == 0:  # the child: stderr is a terminal
        os.execvp(args[0], args)
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.waitpid(pid, 0)
    assert b"generating" in seen and b"20000" in seen.replace(b",", b"")


def count_lines(path: Path) -> int:
    return sum(1 for _ in open(path, "rb"))


def test_a_failure_inside_a_dataflow_step_reads_as_its_own_line():
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource, run_main

    from stockflow.ops.cli import _root_cause

    def fail(_):
        raise RuntimeError("the broker at k:9092 did not acknowledge 3 message(s)")

    flow = Dataflow("failing")
    op.output("out", op.map("fail", op.input("in", flow, TestingSource([1])), fail),
              TestingSink([]))
    with pytest.raises(Exception) as raised:
        run_main(flow)
    assert str(_root_cause(raised.value)) == \
        "the broker at k:9092 did not acknowledge 3 message(s)"


@pytest.mark.parametrize("args, message", [
    (["--process-id", "0"], "--process-id and --addresses go together"),
    (["--addresses", "h1:2101;h2:2101"], "--process-id and --addresses go together"),
    (["-i", "2", "-a", "h1:2101;h2:2101"], "--process-id 2 is not one of the 2 --addresses"),
])
def test_joining_a_cluster_needs_a_process_id_among_the_addresses(args, message, capsys):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"stockflow run: {message}" + (" (see --help)" if "together" in message else "")


def test_version_and_an_empty_device_as_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("stockflow ")
    assert main(["replay", "/dev/null", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert main(["replay", str(tmp_path), "--out", str(tmp_path / "o2")]) == 1
    assert capsys.readouterr().err.strip().endswith("is a directory, not an events file")


# -- defaults ----------------------------------------------------------------------------

def _defaults(*args: str):
    from stockflow.ops.cli import build_parser

    return build_parser().parse_args(list(args))


@pytest.mark.parametrize("args", [["replay", "events.jsonl", "--out", "o"], ["demo"]])
def test_the_engines_defaults_come_from_its_config_type(args):
    from stockflow.connectors.files import CHUNK_LINES
    from stockflow.ops.cli import _engine_config
    from stockflow.state.config import EngineConfig

    parsed = _defaults(*args)
    assert _engine_config(parsed) == EngineConfig()  # every field the CLI sets, as the type's
    assert parsed.chunk_lines == CHUNK_LINES


@pytest.mark.parametrize("command, scenario", [("generate", "GENERATED"), ("demo", "DEMO")])
def test_the_generators_defaults_come_from_its_scenario(command, scenario):
    from stockflow.ops import generate
    from stockflow.ops.cli import _scenario

    assert _scenario(_defaults(command)) == getattr(generate, scenario)


def test_the_benchs_defaults_come_from_its_settings():
    from stockflow.ops.bench.settings import BenchSettings
    from stockflow.ops.config import RedisSettings

    parsed = vars(_defaults("bench"))
    expected = msgspec.structs.asdict(BenchSettings())
    assert {k: parsed[k] for k in expected} == expected
    assert expected["redis_url"] == RedisSettings().url


def test_logs_follow_the_config_unless_the_command_line_says_otherwise():
    from stockflow.ops.cli import _with_log_args
    from stockflow.ops.config import Config, LogSettings

    assert _with_log_args(Config(), _defaults("run")).log == LogSettings()
    told = _with_log_args(Config(), _defaults("run", "--log-level", "DEBUG"))
    assert told.log == LogSettings(level="debug", format=LogSettings().format)
