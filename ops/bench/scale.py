"""The scale-out plan's inputs: what each stage of the engine costs per event, how a hot SKU
loads one ledger bucket, and how many Redis commands an order line costs.

`stage_costs` runs the domain's own stages in this process, as the live flow chains them:
the input partitions (split as producers key them) merged by `Aligner`, routed by `Router`,
applied by one `Ledger` per bucket. Each stage is timed on its own, so the sequencer's
ceiling (one keyed step, on one worker, for the whole engine) and the busiest bucket's share
of the ledger's work can be read apart; Bytewax, Kafka and Redis are measured by the live
runs, not here.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import defaultdict
from pathlib import Path

import msgspec

from stockflow.connectors.codec import decode_message
from stockflow.state.alignment import Aligner
from stockflow.state.config import EngineConfig
from stockflow.state.events import OrderCreated
from stockflow.state.ledger import Ledger
from stockflow.state.routing import Router

from . import kafka_runs
from .broker import start_tansu
from .kafka_runs import LAYOUT, order_lines, topic_of

HOT_SKU = "HOT-0001"
CHUNK = 2000  # messages a source hands over at once, as `[kafka] batch_size` does live


def partition_of(line: bytes) -> str:
    """`topic:partition` as a producer would pick it: the key's hash over the topic's
    partitions (crc32 here; Kafka's murmur2 spreads keys the same way for this purpose)."""
    topic, key = topic_of(line)
    n = LAYOUT[topic]
    return f"{topic}:{zlib.crc32(key) % n if key and n > 1 else 0}"


# -- a hot SKU ---------------------------------------------------------------------------


def hot_sku_trace(lines: list[bytes], share: float = 0.30, sku: str = HOT_SKU,
                  on_hand: int = 10_000_000) -> list[bytes]:
    """The trace with `share` of its order lines (picked by a hash of order and line id) on
    one new SKU, stocked at every node that ships before the first order; the shipments and
    returns of those lines follow them. Everything else is left byte for byte."""
    moved: set[tuple[str, str]] = set()
    shippers: list[str] = []
    out: list[bytes] = []
    stocked = False
    cut = int(share * 2**32)
    for raw in lines:
        try:
            msg = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            out.append(raw)
            continue
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "node.upserted" and msg.get("node", {}).get("can_ship"):
            shippers.append(msg["node"]["id"])
        elif kind == "order.created" and isinstance(msg.get("lines"), list):
            if not stocked:
                out.extend(_stock(shippers, sku, on_hand, msg.get("ts")))
                stocked = True
            changed = False
            for line in msg["lines"]:
                key = f"{msg.get('order_id')}/{line.get('line_id')}".encode()
                if zlib.crc32(key) < cut:
                    moved.add((msg.get("order_id"), line.get("line_id")))
                    line["sku"] = sku
                    changed = True
            if changed:
                raw = msgspec.json.encode(msg)
        elif kind in ("shipment.confirmed", "order.returned") and \
                (msg.get("order_id"), msg.get("line_id")) in moved:
            msg["sku"] = sku
            raw = msgspec.json.encode(msg)
        out.append(raw)
    return out


def _stock(nodes: list[str], sku: str, on_hand: int, ts) -> list[bytes]:
    return [msgspec.json.encode({"type": "stock.snapshot", "event_id": f"hot-stock-{node}",
                                 "ts": ts, "sku": sku, "node": node, "on_hand": on_hand,
                                 "seq": 1})
            for node in nodes]


# -- what each stage costs -----------------------------------------------------------------


def stage_costs(lines: list[bytes], buckets: int = 8) -> dict:
    """CPU time of each stage over the whole trace, in this process."""
    config = EngineConfig(buckets=buckets)
    parts: dict[str, list] = defaultdict(list)
    for raw in lines:
        part = partition_of(raw)
        parts[part].append(decode_message(raw, part))
    aligner, router = Aligner(sorted(parts)), Router(config)
    ledgers = [Ledger(config) for _ in range(buckets)]
    ledger_s = [0.0] * buckets
    sequencer_s = 0.0
    cursors = {part: 0 for part in parts}
    while cursors:
        for part in list(cursors):
            start = time.process_time()
            at = cursors[part]
            chunk = parts[part][at:at + CHUNK]
            ended = at + CHUNK >= len(parts[part])
            aligner.add(part, chunk, 0, end=ended)
            work, _dead = router.route(aligner.release(0))
            sequencer_s += time.process_time() - start
            if ended:
                del cursors[part]
            else:
                cursors[part] = at + CHUNK
            for bucket, items in work.items():
                start = time.process_time()
                ledgers[bucket].apply_batch(items)
                ledger_s[bucket] += time.process_time() - start
    n_lines = order_lines(lines)
    total_ledger = sum(ledger_s)
    by_bucket = [0] * buckets
    for events in parts.values():
        for ev in events:
            if type(ev) is OrderCreated:
                for line in ev.lines:
                    by_bucket[router.bucket(line.sku)] += 1
    return {
        "events": len(lines), "order_lines": n_lines, "buckets": buckets,
        "sequencer_us_per_event": round(sequencer_s * 1e6 / len(lines), 2),
        "sequencer_events_per_s": round(len(lines) / sequencer_s),
        "ledger_us_per_line": round(total_ledger * 1e6 / n_lines, 2),
        "busiest_bucket_share": round(max(ledger_s) / total_ledger, 3),  # of ledger CPU
        "busiest_bucket_line_share": round(max(by_bucket) / sum(by_bucket), 3),
    }


# -- the measured run and the plan ----------------------------------------------------------

PEAK_ORDERS_PER_S = 583_000  # Double 11, 2020: the peak a plan for "any retailer" must meet


def run_scale_bench(out_dir: str, events: int, redis_url: str) -> dict:
    """`stockflow bench --scale`: the measurements and the plan, in `<out>/scale.json`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = kafka_runs.generated(events)
    tansu = start_tansu()
    try:
        measured = run_scale(lines, tansu.brokers, redis_url)
    finally:
        tansu.stop()
    results = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **measured,
               "plan": plan(measured)}
    (out / "scale.json").write_text(json.dumps(results, indent=2))
    return results


def run_scale(lines: list[bytes], brokers: str, redis_url: str, share: float = 0.30) -> dict:
    """Every figure the plan needs, measured side by side on one workload and on the same
    workload with one SKU taking `share` of the order lines."""
    hot = hot_sku_trace(lines, share)
    return {
        "workload": _shape(lines),
        "stages": {"uniform": stage_costs(lines), "hot_sku": stage_costs(hot)},
        "hot_sku_share": share,
        "live": {
            "one_process": kafka_runs.throughput(brokers, redis_url, lines, processes=1),
            "two_processes": kafka_runs.throughput(brokers, redis_url, lines, processes=2),
            "two_processes_hot_sku": kafka_runs.throughput(brokers, redis_url, hot, processes=2),
        },
    }


def _shape(lines: list[bytes]) -> dict:
    """The workload's shape per order line. Events per line count from the first order on:
    the opening master data and stock counts are set-up, not load that grows with orders."""
    first = next((i for i, line in enumerate(lines) if b'"order.created"' in line), 0)
    flowing = lines[first:]
    orders = sum(1 for line in flowing if b'"order.created"' in line)
    n_lines = order_lines(flowing)
    return {"events": len(lines), "orders": orders, "order_lines": n_lines,
            "lines_per_order": round(n_lines / orders, 3),
            "events_per_line": round(len(flowing) / n_lines, 3),
            "bytes_per_event": round(sum(len(line) for line in flowing) / len(flowing))}


def plan(m: dict, peak_orders_per_s: int = PEAK_ORDERS_PER_S) -> dict:
    """What a peak of `peak_orders_per_s` needs, from the measured costs per order line; and
    the ceilings where that arithmetic stops holding."""
    shape, two = m["workload"], m["live"]["two_processes"]
    lines_s = peak_orders_per_s * shape["lines_per_order"]
    events_s = lines_s * shape["events_per_line"]
    uniform, hot = m["stages"]["uniform"], m["stages"]["hot_sku"]
    return {
        "peak_orders_per_s": peak_orders_per_s,
        "peak_lines_per_s": round(lines_s),
        "peak_events_per_s": round(events_s),
        # one worker process keeps one core busy: cores needed = processes needed
        "engine_processes": _up(lines_s * two["cpu_us_per_line"] / 1e6),
        "redis_cores": _up(lines_s * m["live"]["one_process"]["redis_cpu_us_per_line"] / 1e6),
        "redis_commands_per_s": round(lines_s * m["live"]["one_process"]["redis_commands_per_line"]),
        "kafka_input_mb_per_s": round(events_s * shape["bytes_per_event"] / 1e6, 1),
        # ceilings: one sequencer merges everything; one SKU lives in one bucket
        "sequencer_ceiling_events_per_s": uniform["sequencer_events_per_s"],
        "sequencers_needed": _up(events_s / uniform["sequencer_events_per_s"]),
        # the busiest bucket's process spends its share of every line's cost on it
        "hot_bucket_ceiling_lines_per_s": round(1e6 / (
            m["live"]["two_processes_hot_sku"]["cpu_us_per_line"] * hot["busiest_bucket_share"])),
    }


def _up(x: float) -> int:
    return max(1, int(-(-x // 1)))
