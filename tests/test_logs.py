"""Log lines: logfmt or JSON, one per notable thing; what a live engine says when it starts,
resumes and stops; and nothing from the commands whose output is their summary."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import time

import redis

from stockflow.connectors.redis_store import ReadModelStore
from stockflow.ops.logs import configure

from .live_runs import LiveRun, generated_trace
from .test_cli import guard_trace
from .servers import RedisServer, unique_prefix

# key=value or key="quoted \" value", as logfmt writes them.
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def logfmt(line: str) -> dict[str, str]:
    pairs = {}
    for key, value in _PAIR.findall(line):
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        pairs[key] = value
    return pairs


def log_lines(text: str, form: str = "text") -> list[dict]:
    """The log lines of a process's output, parsed; other lines are left out."""
    if form == "json":
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [logfmt(line) for line in text.splitlines() if line.startswith("ts=")]


def _emit(form: str, level: str = "info") -> str:
    out = io.StringIO()
    configure(level, form, out)
    try:
        log = logging.getLogger("stockflow.test")
        log.debug("hidden", extra={"n": 0})
        log.info("start", extra={"process_id": 0, "brokers": "k1:9092,k2:9092", "redis": "on",
                                 "offsets": {"t.orders:0": 12, "t.stock:1": 3},
                                 "why": 'a "quoted" word = fine'})
        log.warning("redis_away", extra={"error": None, "drain": False})
    finally:
        configure("warning")  # as the CLI leaves it for other commands
    return out.getvalue()


def test_text_lines_are_logfmt_with_the_fields_given():
    lines = _emit("text").splitlines()
    assert len(lines) == 2  # debug is below the level
    assert re.match(r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info "
                    r"logger=stockflow\.test event=start process_id=0 ", lines[0]), lines[0]
    first, second = logfmt(lines[0]), logfmt(lines[1])
    assert first["brokers"] == "k1:9092,k2:9092"
    assert first["offsets"] == "t.orders:0=12,t.stock:1=3"
    assert first["why"] == 'a "quoted" word = fine'
    assert (second["level"], second["event"], second["error"], second["drain"]) == (
        "warning", "redis_away", "", "false")


def test_json_lines_are_one_object_each():
    lines = _emit("json", level="debug").splitlines()
    parsed = [json.loads(line) for line in lines]
    assert [p["event"] for p in parsed] == ["hidden", "start", "redis_away"]
    assert parsed[1]["offsets"] == {"t.orders:0": 12, "t.stock:1": 3}
    assert parsed[1]["logger"] == "stockflow.test" and parsed[1]["level"] == "info"
    assert parsed[2]["error"] is None and parsed[2]["drain"] is False


def test_the_demo_prints_no_log_lines(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "stockflow.ops.cli", "demo", "--events", "3000",
                           "--skus", "60", "--stores", "4", "--quiet", "--out", str(tmp_path)],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    err, out = proc.stderr.decode(), proc.stdout.decode()
    assert [line.split(" ")[0] for line in err.splitlines()] == ["generated", "outputs:"], err
    assert "level=" not in out + err and "event=" not in out + err
    assert "lines allocated" in out and "throughput" in out  # the summary, as before


def test_a_live_engine_says_where_it_starts_resumes_and_stops(kafka_brokers, redis_url,
                                                              tmp_path):
    trace = generated_trace(tmp_path, events=1_500, seed=5, skus=40, stores=4)
    lines = [line for line in trace.read_bytes().splitlines() if line.strip()]
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics({})
    run.produce(lines[:1000])
    run.drain()
    first = log_lines(run.log())
    start, resume, stop = (next(x for x in first if x["event"] == e)
                           for e in ("start", "resume", "stop"))
    assert start["logger"] == "stockflow.ops.live" and start["level"] == "info"
    assert (start["process_id"], start["processes"], start["buckets"], start["redis"]) == (
        "0", "1", "8", "on")
    assert start["brokers"] == kafka_brokers
    assert start["recovery"] == str(tmp_path / "recovery")
    assert resume["from"] == "scratch" and "epoch" not in resume
    assert stop["reason"] == "drained"

    run.produce(lines[1000:])
    run.env["STOCKFLOW_LOG_FORMAT"] = "json"
    run.drain()
    second = [json.loads(line) for line in run.log().splitlines()]  # every line is JSON
    assert [x["event"] for x in second] == ["start", "resume", "stop"], second
    resume = second[1]
    assert resume["from"] == "snapshot" and resume["epoch"] >= 1
    # The drain read the partition to its end: the restart reads on from there.
    assert resume["offsets"] == {f"{run.prefix}orders:0": 1000}
    assert resume["epoch"] == _recorded_resume_epoch(tmp_path / "recovery")  # as Bytewax did
    assert second[0]["drain"] is True and second[0]["processes"] == 1
    assert all(x["ts"].endswith("Z") and x["logger"] == "stockflow.ops.live" for x in second)


def _recorded_resume_epoch(recovery) -> int:
    """The resume epoch Bytewax wrote down for its last start."""
    rows = []
    for path in recovery.glob("part-*.sqlite3"):
        db = sqlite3.connect(path)
        try:
            rows += db.execute("SELECT ex_num, resume_epoch FROM exs").fetchall()
        finally:
            db.close()
    return max(rows)[1]


def test_a_bad_log_level_is_one_readable_line():
    for args, env in ((["run", "--log-level", "loud"], {}),
                      (["run"], {"STOCKFLOW_LOG_LEVEL": "loud"})):
        proc = subprocess.run([sys.executable, "-m", "stockflow.ops.cli", *args],
                              env={**os.environ, **env}, capture_output=True, timeout=60)
        err = proc.stderr.decode().strip()
        assert proc.returncode in (1, 2) and "\n" not in err and "loud" in err, err


def test_redis_away_back_and_found_empty_are_one_line_each(caplog):
    caplog.set_level(logging.INFO, logger="stockflow")
    server = RedisServer()
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        store = ReadModelStore(client, "logs", retry_after_s=0.05)
        store.start()
        store.whole(1, store.outages)  # one bucket, whole
        server.stop()
        for _ in range(3):  # three failed round trips: one outage
            store.beat()
            time.sleep(0.06)
        assert store.outages == 3
        server.start()  # back empty: no mark, no functions
        store.beat()
        assert store.rebuilding and store.losses == 1
        assert store.write([])
        store.whole(1, store.outages)  # the bucket wrote its read model again
    finally:
        server.stop()
    said = [r for r in caplog.records if r.name == "stockflow.connectors.redis_store"]
    assert [(r.levelname, r.getMessage()) for r in said] == [
        ("WARNING", "redis_away"), ("INFO", "redis_back"), ("WARNING", "redis_found_empty"),
        ("INFO", "redis_read_model_rewritten")]
    assert "Connection refused" in said[0].error or "Error" in said[0].error
    assert said[1].away_s >= 0.1 and said[3].buckets == 1


def test_the_snapshot_guards_decisions_are_logged_at_info(tmp_path):
    trace = guard_trace(tmp_path)
    replay = [sys.executable, "-m", "stockflow.ops.cli", "replay", str(trace), "--out",
              str(tmp_path / "out"), "--quiet", "--snapshot-guard-share", "0.5"]

    told = subprocess.run(replay + ["--log-level", "info"], capture_output=True, timeout=60)
    said = [(x["event"], x["snapshot_event_id"], x["sku"], x["node"])
            for x in log_lines(told.stderr.decode())]
    assert said == [("snapshot_quarantined", "count-1", "K", "A"),
                    ("snapshot_approved", "count-1", "K", "A")], told.stderr.decode()
    quiet = subprocess.run(replay, capture_output=True, timeout=60)  # replay's default
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.stderr.decode()
