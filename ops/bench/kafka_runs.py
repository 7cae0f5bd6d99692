"""Live-mode benchmarks over a real Kafka-protocol broker and Redis.

- throughput: the trace preloaded into the input topics, `stockflow run --drain`; order lines
  per second between the first and the last output message (startup excluded), with 1 and 2
  worker processes, and the bare passthrough on the same input;
- latency under load: the engine tailing, a producer at a fixed share of the measured
  maximum; event -> command latency from Kafka timestamps (p50, p99).
"""

from __future__ import annotations

import io
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import msgspec

from stockflow.dataflows.passthrough import STREAM
from stockflow.ops.bench.harness import LiveRun, event_id_of
from stockflow.state.events import OrderCreated

from ..generate import Scenario, write_jsonl

# As platform teams produce: master data on one partition, stock keyed by SKU and orders
# keyed by order id over three partitions each.
LAYOUT = {"master": 1, "stock": 3, "orders": 3}
# The streams whose every message is a decision (availability is a state, coalesced per
# batch: compared by its last value; dead letters name where they came from).
DECISIONS = ("dispatch", "order-status", "replenishment", "alerts")


_COUNT_PREFIX = b'"line_id"'


class _Routing(msgspec.Struct):
    type: str = ""
    order_id: str | None = None
    sku: str | None = None


_DECODE_ROUTING = msgspec.json.Decoder(_Routing).decode


def order_lines(lines: list[bytes]) -> int:
    return sum(line.count(_COUNT_PREFIX) for line in lines if b'"order.created"' in line)


def topic_of(line: bytes):
    """Where a producer would send an event: orders by order id, stock by SKU, master data."""
    try:
        r = _DECODE_ROUTING(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "orders", None
    if r.type.startswith(("node.", "channel.")):
        return "master", None
    if r.type.startswith("order."):
        return "orders", (r.order_id or "").encode()
    return "stock", (r.sku or "").encode()


def _world(brokers: str, redis_url: str, redis: bool) -> LiveRun:
    prefix = f"b{time.time_ns() % 10**9}."
    run = LiveRun(brokers, redis_url, prefix, Path(tempfile.mkdtemp(prefix="stockflow-bench-")),
                  redis=redis)
    run.env["STOCKFLOW_KAFKA_BATCH_SIZE"] = "2000"
    run.env["STOCKFLOW_RECOVERY_SNAPSHOT_INTERVAL_S"] = "5"
    run.create_topics(LAYOUT, [prefix + STREAM])
    return run


def throughput(brokers: str, redis_url: str, lines: list[bytes], processes: int = 1,
               redis: bool = True) -> dict:
    """The trace preloaded in the producers' layout, drained; reported only once its
    decisions are checked equal to a replay of the recorded topics."""
    run = _world(brokers, redis_url, redis)
    run.produce(lines, topic_of)
    server = RedisLoad(redis_url) if redis else None
    started, cpu_before = time.monotonic(), _children_cpu_s()
    run.drain("--processes", str(processes), timeout=3600)
    wall = time.monotonic() - started
    cpu_s = _children_cpu_s() - cpu_before  # every engine process, start to drain
    redis_load = server.per_line(order_lines(lines)) if server else {}
    outputs = run.outputs(timestamps=True)
    check_against_replay(run, [(stream, value) for stream, value, _ in outputs])
    stamps = [ts for _, _, ts in outputs]
    busy = (max(stamps) - min(stamps)) / 1000 if stamps else wall
    n_lines = order_lines(lines)
    return {
        "system": "stockflow", "processes": processes, "redis": redis,
        "events": len(lines), "order_lines": n_lines, "outputs": len(stamps),
        "seconds": round(busy, 2), "wall_seconds": round(wall, 2),
        "events_per_s": round(len(lines) / busy), "order_lines_per_s": round(n_lines / busy),
        "cpu_s": round(cpu_s, 2), "cpu_us_per_line": round(cpu_s * 1e6 / n_lines, 1),
        "decisions_equal_replay": True, **redis_load,
    }


class RedisLoad:
    """What the Redis server did between this and `per_line`: commands it processed and CPU
    it spent, whoever sent them (so measure with no other clients)."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.before = self._read()

    def _read(self) -> tuple[int, float]:
        stats, cpu = self.client.info("stats"), self.client.info("cpu")
        return (int(stats["total_commands_processed"]),
                float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]))

    def per_line(self, lines: int) -> dict:
        commands, cpu_s = (after - before for after, before in zip(self._read(), self.before))
        self.client.close()
        return {"redis_commands_per_line": round(commands / lines, 2),
                "redis_cpu_us_per_line": round(cpu_s * 1e6 / lines, 1)}


def _children_cpu_s() -> float:
    """User + system CPU of the child processes waited for so far (and of theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class DecisionsDiffer(AssertionError):
    pass


def check_against_replay(run: LiveRun, outputs: list[tuple[str, bytes]]) -> None:
    """Raises unless the live outputs decide as `stockflow replay` of the recorded input
    topics, merged by event time: every command, status and alert, byte for byte, and each
    (sku, channel)'s last availability."""
    out, _ = run.replay_recorded()
    replayed = [(stream, line) for stream in (*DECISIONS, "availability")
                for line in (out / f"{stream}.jsonl").read_bytes().splitlines() if line]
    for stream in DECISIONS:
        live_n = Counter(v for s, v in outputs if s == stream)
        replay_n = Counter(v for s, v in replayed if s == stream)
        if live_n != replay_n:
            raise DecisionsDiffer(
                f"live {stream} differs from the replay of the recorded topics: "
                f"{sum((live_n - replay_n).values())} extra, "
                f"{sum((replay_n - live_n).values())} missing")
    if _last_availability(outputs) != _last_availability(replayed):
        raise DecisionsDiffer("live availability ends unlike the replay's")


class _Availability(msgspec.Struct):
    sku: str
    channel: str
    available: int


_DECODE_AVAILABILITY = msgspec.json.Decoder(_Availability).decode


def _last_availability(outputs: list[tuple[str, bytes]]) -> dict:
    last = {}
    for stream, value in outputs:
        if stream == "availability":
            a = _DECODE_AVAILABILITY(value)
            last[(a.sku, a.channel)] = a.available
    return {k: v for k, v in last.items() if v}


def passthrough(brokers: str, lines: list[bytes]) -> dict:
    run = _world(brokers, "redis://unused", False)
    run.produce(lines, topic_of)
    started = time.monotonic()
    code = ("from bytewax.testing import run_main; "
            "from stockflow.dataflows.passthrough import passthrough_flow; "
            f"run_main(passthrough_flow({brokers!r}, {run.prefix!r}, 2000))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=3600)
    wall = time.monotonic() - started
    stamps = [ts for _, _, ts in run.outputs(True, [run.prefix + STREAM])]
    busy = (max(stamps) - min(stamps)) / 1000 if stamps else wall
    n_lines = order_lines(lines)
    return {
        "system": "passthrough", "events": len(lines), "order_lines": n_lines,
        "outputs": len(stamps), "seconds": round(busy, 2), "wall_seconds": round(wall, 2),
        "events_per_s": round(len(lines) / busy), "order_lines_per_s": round(n_lines / busy),
    }


def generated(events: int) -> list[bytes]:
    """The benchmarks' workload: `stockflow generate --seed 7` of `events` events, as lines."""
    buf = io.BytesIO()
    write_jsonl(Scenario(events=events, seed=7), buf)
    return [line for line in buf.getvalue().splitlines() if line.strip()]


def ordered_skus(lines: list[bytes]) -> Counter:
    """SKU -> how many order lines of the trace ask for it (malformed orders left out)."""
    decode = msgspec.json.Decoder(OrderCreated).decode
    counts: Counter = Counter()
    for line in lines:
        if b'"order.created"' in line:
            try:
                counts.update(ol.sku for ol in decode(line).lines)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
    return counts


def split_setup(lines: list[bytes], orders: int = 100) -> tuple[list[bytes], list[bytes]]:
    """(master data and opening stock, the rest): a generated trace opens with its stock
    counts, a few orders trickling in; the setup ends where the `orders`-th order is."""
    seen = 0
    for i, line in enumerate(lines):
        if b'"order.created"' in line:
            seen += 1
            if seen == orders:
                return lines[:i], lines[i:]
    return lines, []


def latency_under_load(brokers: str, redis_url: str, setup: list[bytes], paced: list[bytes],
                       rate: float, redis: bool = True) -> dict:
    """The engine tailing and writing clock ticks, as in production; `setup` produced at once
    and applied, then `paced` at `rate` events/s, every event stamped when sent; latency of
    every order status and command the paced events caused."""
    run = _world(brokers, redis_url, redis)
    run.env["STOCKFLOW_RUN_CLOCK_TICK_S"] = "1"
    engine = run.start()
    watched = [run.prefix + "dispatch", run.prefix + "order-status"]
    try:
        run.produce(setup, topic_of, stamp_now=True)
        _wait_until_quiet(run, [run.prefix + "availability"])
        produce_s = run.produce(paced, topic_of, rate=rate, stamp_now=True)
        _wait_until_quiet(run, watched)
    finally:
        engine.terminate()
        engine.wait()
    paced_ids = {event_id_of(line) for line in paced}
    stamps = run.input_times()
    sent = {k: v for k, v in stamps.items() if k in paced_ids}
    latencies = sorted(
        ts - sent[cause] for _, value, ts in run.outputs(True, watched)
        if (cause := _cause(value)) in sent
    )
    return {
        "system": "stockflow", "rate": round(rate), "events": len(paced),
        "order_lines_per_s": round(rate * order_lines(paced) / max(len(paced), 1)),
        "achieved_rate": round(len(paced) / produce_s), "outputs_timed": len(latencies),
        "p50_ms": _pct(latencies, 0.50), "p99_ms": _pct(latencies, 0.99),
        "max_ms": latencies[-1] if latencies else None,
        # Recorded in the input topics, setup and quiet waits included.
        "clock_ticks": sum(1 for event_id in stamps if event_id.startswith("tick/")),
    }


def _wait_until_quiet(run: LiveRun, topics: list[str], quiet_s: int = 3,
                      timeout: float = 600) -> None:
    """Until the topics stop growing for `quiet_s` seconds: the engine has caught up."""
    last, stable = None, 0
    deadline = time.monotonic() + timeout
    while stable < quiet_s:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no outputs on {topics} after {timeout:.0f} s:\n"
                               f"{run.log()[-3000:]}")
        time.sleep(1)
        count = len(run.outputs(topics=topics))
        stable = stable + 1 if count == last and count > 0 else 0
        last = count


class _Cause(msgspec.Struct):
    cause: str = ""


_DECODE_CAUSE = msgspec.json.Decoder(_Cause).decode


def _cause(value: bytes) -> str:
    return _DECODE_CAUSE(value).cause


def _pct(values: list, q: float):
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]
