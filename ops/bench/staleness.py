"""How stale published availability is after a checkout hold: grant (or release) -> the
availability every channel sees counts it.

The engine tails its topics with clock ticks, as in production. Checkouts hold one unit at a
time through the reservation API, on SKUs the workload leaves quiet and on the SKUs it orders
most, first with no other traffic, then while the workload is produced at a share of the
measured maximum. For each hold:
- read model: the grant -> the moment Redis shows the hold taken in (`reservations.lua`
  marks it absorbed in the same call that writes the availability counting it), polled every
  half millisecond; the same for its release -> the availability back;
- availability topic (quiet SKUs, where only the hold moves it): the grant -> the Kafka
  timestamp of the first `availability.changed` of that SKU and channel with the new value.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import redis

from stockflow.connectors.reservations import ReservationRefused, Reservations
from stockflow.state.events import StockSnapshot
from stockflow.state.outputs import AvailabilityChanged

from . import kafka_runs
from .broker import start_tansu
from .kafka_runs import _pct, _wait_until_quiet, _world, topic_of

PROBES = 150  # holds per SKU group and traffic
POLL_S = 0.0005
GIVE_UP_S = 5.0


def staleness(brokers: str, redis_url: str, setup: list[bytes], paced: list[bytes],
              rate: float, probes: int = PROBES) -> dict:
    """Staleness of published availability after checkout holds, with and without traffic:
    `probes` holds per SKU group and traffic."""
    run = _world(brokers, redis_url, redis=True)
    run.env["STOCKFLOW_RUN_CLOCK_TICK_S"] = "1"
    engine = run.start()
    client = redis.Redis.from_url(redis_url)
    api = Reservations(client, run.prefix.rstrip("."), busy_wait_s=1.0)
    try:
        run.produce(setup, topic_of, stamp_now=True)
        _wait_until_quiet(run, [run.prefix + "availability"])
        quiet, busy = _probe_skus(setup, paced, client, api)
        results = {"idle": {}, "under_load": {"rate": round(rate)}}
        results["idle"]["quiet_sku"] = _probe(client, api, quiet, probes)
        producer = threading.Thread(target=run.produce, args=(paced, topic_of),
                                    kwargs={"rate": rate, "stamp_now": True}, daemon=True)
        producer.start()
        time.sleep(1.0)  # the load is on
        results["under_load"]["quiet_sku"] = _probe(client, api, quiet, probes)
        results["under_load"]["busy_sku"] = _probe(client, api, busy, probes, releases=False)
        producer.join()
    finally:
        engine.terminate()
        engine.wait()
    topic = _topic_latency(run, results)
    for traffic, by_kind in topic.items():
        results[traffic]["quiet_sku"]["availability_topic"] = by_kind
    for by_kind in (results["idle"], results["under_load"]):
        for kind in ("quiet_sku", "busy_sku"):
            if kind in by_kind:
                by_kind[kind].pop("grants", None)
    return results


def _probe_skus(setup: list[bytes], paced: list[bytes], client,
                api: Reservations) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(sku, channel) pairs to hold: SKUs with stock that the paced workload never orders,
    and those it orders most; each with a channel that can sell it."""
    decode_count = msgspec.json.Decoder(StockSnapshot).decode
    ordered = kafka_runs.ordered_skus(paced)
    stocked = []
    for line in setup:
        if b'"stock.snapshot"' in line:
            try:
                stocked.append(decode_count(line).sku)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
    quiet = [sku for sku in dict.fromkeys(stocked) if sku not in ordered]
    busy = [sku for sku, _ in ordered.most_common(40)]
    return _sellable(client, api, quiet)[:20], _sellable(client, api, busy)[:20]


def _sellable(client, api: Reservations, skus: list[str]) -> list[tuple[str, str]]:
    found = []
    for sku in skus:
        avail = {k.decode(): int(v) for k, v in client.hgetall(api.keys.avail(sku)).items()}
        channel = max(avail, key=avail.get, default=None)
        if channel is not None and avail[channel] >= 10:
            found.append((sku, channel))
    return found


def _probe(client, api: Reservations, pairs: list[tuple[str, str]], probes: int,
           releases: bool = True) -> dict:
    """One-unit holds taken and released in turn over `pairs`; latencies in ms. (The
    release is timed until the availability is back: only where nothing else moves it.)"""
    if not pairs:
        return {"holds": 0}
    taken_ms, released_ms, grants, refused = [], [], [], Counter()
    for i in range(probes):
        sku, channel = pairs[i % len(pairs)]
        hold_id = uuid.uuid4().hex
        before = int(client.hget(api.keys.avail(sku), channel) or 0)
        started = time.time()
        try:
            api.reserve(sku, channel, 1, 60_000, hold_id)
        except ReservationRefused as exc:
            refused[exc.code] += 1
            continue
        absorbed = _until(lambda: (client.hget(api.keys.checkouts(sku), hold_id) or b"")
                          .endswith(b"\t1"))
        if absorbed is None:
            refused["not_taken_in"] += 1
            continue
        taken_ms.append((absorbed - started) * 1000)
        grants.append((sku, channel, before - 1, started))
        started = time.time()
        api.release(sku, hold_id)
        if not releases:
            continue
        back = _until(lambda: int(client.hget(api.keys.avail(sku), channel) or 0) >= before)
        if back is not None:
            released_ms.append((back - started) * 1000)
    result = {"holds": len(taken_ms), "refused": dict(refused),
              "grant_to_read_model_ms": _p50_p99(taken_ms), "grants": grants}
    if releases:
        result["release_to_read_model_ms"] = _p50_p99(released_ms)
    return result


def _p50_p99(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"p50": _round(_pct(ms, .5)), "p99": _round(_pct(ms, .99))}


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)


def _until(done) -> float | None:
    """The wall time `done()` first held, polled every half millisecond; None on giving up."""
    deadline = time.time() + GIVE_UP_S
    while time.time() < deadline:
        if done():
            return time.time()
        time.sleep(POLL_S)
    return None


_DECODE = msgspec.json.Decoder(AvailabilityChanged).decode


def _topic_latency(run, results: dict) -> dict:
    """Grant -> the first `availability.changed` carrying its value, per traffic (quiet
    SKUs: nothing else moves their availability)."""
    messages: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for _, value, ts in run.outputs(True, [run.prefix + "availability"]):
        out = _DECODE(value)
        messages.setdefault((out.sku, out.channel), []).append((ts, out.available))
    found = {}
    for traffic in ("idle", "under_load"):
        latencies = []
        for sku, channel, value, started in results[traffic]["quiet_sku"].get("grants", ()):
            at = next((ts for ts, available in messages.get((sku, channel), ())
                       if ts >= started * 1000 - 1 and available == value), None)
            if at is not None:
                latencies.append(at - started * 1000)
        found[traffic] = {"holds": len(latencies), "grant_to_topic_ms": _p50_p99(latencies)}
    return found


def run_staleness(out_dir: str, events: int, redis_url: str, share: float = 0.5) -> dict:
    """`stockflow bench --staleness`: the generated workload (seed 7); its maximum measured
    first (one process, drained), the load then at `share` of it. Also written to
    `<out>/staleness.json`."""
    lines = kafka_runs.generated(events)
    setup, orders = kafka_runs.split_setup(lines)
    tansu = start_tansu()
    try:
        one = kafka_runs.throughput(tansu.brokers, redis_url, lines, processes=1)
        paced = orders[:20_000]
        rate = share * one["order_lines_per_s"] / (kafka_runs.order_lines(paced) / len(paced))
        results = {"workload": {"events": len(lines), "seed": 7},
                   "max_order_lines_per_s": one["order_lines_per_s"], "load": share,
                   **staleness(tansu.brokers, redis_url, setup, paced, rate)}
    finally:
        tansu.stop()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "staleness.json").write_text(json.dumps(results, indent=2))
    return results
