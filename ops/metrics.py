"""Prometheus metrics: what dashboards scrape, and what the alert rules watch.

Names follow Prometheus conventions (`stockflow_` prefix, `_total` counters, base units);
labels have bounded values (event type, stream, channel, reason, topic), never a SKU or an
order id. The dataflow's adapters report through `Observer`; in live mode Bytewax's dataflow
API serves the default registry on /metrics, in replay `--metrics FILE` writes it at the end.
"""

from __future__ import annotations

import time
from collections import Counter as Tally

import redis
from redis.exceptions import RedisClusterException
from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily

from stockflow.state.events import ClockTick, Malformed
from stockflow.state.outputs import DeadLetter, OrderStatus

from .oversell import CONFIG_REASONS, OVERSELL_REASONS

disable_created_metrics()  # no `_created` series: they double every counter for nothing

_LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

# Throughput is `sum(rate(stockflow_events_total[1m]))`: the events producers sent. The ticks
# live mode writes into quiet partitions (about one a second each, idle or not) are counted
# apart, so an idle engine's event rate is zero.
EVENTS = Counter("stockflow_events", "Input events routed, by type (duplicates and "
                 "clock.tick excluded): the throughput series.", ["type"])
CLOCK_TICKS = Counter("stockflow_clock_ticks", "clock.tick events routed (written by live "
                      "mode into quiet input partitions; not in stockflow_events_total).")
DUPLICATES = Counter("stockflow_duplicate_events", "Input events dropped as duplicates.")
OUTPUTS = Counter("stockflow_outputs", "Outputs emitted, by stream.", ["stream"])
DEAD_LETTERS = Counter("stockflow_dead_letters",
                       "Dead letters, by reason: malformed messages, and events refused as "
                       "contradicting what the engine knows.", ["reason"])
LATENCY = Histogram("stockflow_processing_latency_seconds",
                    "Input read -> its outputs emitted, per batch.", buckets=_LATENCY_BUCKETS)
EVENT_LAG = Histogram("stockflow_event_lag_seconds",
                      "Oldest event time of a batch -> its outputs emitted (wall clock).",
                      buckets=_LAG_BUCKETS)
OVERSOLD = Counter("stockflow_oversold_lines",
                   "Paid order lines rejected, at each rejection, by channel and reason: "
                   "no_stock, split_not_allowed and shortage are oversell (ops/oversell.py, "
                   "as the replay summary counts it), unknown_channel and no_eligible_node "
                   "are configuration.",
                   ["channel", "reason"])
SHORTAGE_UNITS = Counter("stockflow_shortage_units",
                         "Units found committed beyond supply when supply dropped.")
HOLDS_EXPIRED = Counter("stockflow_holds_expired",
                        "Holds that ran out: unpaid orders' and checkouts' alike.")
HOLDS_RELEASED = Counter("stockflow_holds_released",
                         "Checkout holds their checkout released before they ran out.")
HOLDS_SETTLED = Counter("stockflow_holds_settled",
                        "Checkout holds taken over by the order that carried their hold_id.")
BACKORDERS_OPEN = Gauge("stockflow_backorders_open", "Order lines waiting for supply.")
HELD_UNITS = Gauge("stockflow_held_units",
                   "Units under a live hold (unpaid orders' and checkouts' the engine took "
                   "in), after each batch.")
KAFKA_LAG = Gauge("stockflow_kafka_consumer_lag_messages",
                  "Messages behind the end of an input partition.", ["topic", "partition"])
REDIS_ERRORS = Counter("stockflow_redis_errors", "Failed Redis round trips.")
LATE_EVENTS = Counter("stockflow_late_events",
                      "Events applied behind the event-time merge's frontier (their partition "
                      "had been passed over after the idle wait), by input partition.",
                      ["partition"])
STATE_SKUS = Gauge("stockflow_state_skus", "SKUs in keyed state.")
STATE_POSITIONS = Gauge("stockflow_state_positions", "SKU x node entries in keyed state.")
SNAPSHOT_SECONDS = Histogram("stockflow_snapshot_duration_seconds",
                             "Time to snapshot one bucket's state.",
                             buckets=(.001, .005, .01, .05, .1, .5, 1, 5, 10))


def dead_letter_reason(error: str) -> str:
    """A bounded label for a decode error message."""
    if "malformed" in error or "truncated" in error:
        return "not_json"
    if "`$.type`" in error:
        return "unknown_type"
    if "missing required field" in error:
        return "missing_field"
    if error.startswith("Expected `") and "got" in error:
        return "wrong_type"
    if error.startswith("Expected") or "duplicate line_id" in error or "needs" in error:
        return "broken_rule"
    return "other"


# The reasons the engine gives a rejected line (state/sourcing.py `why_unfilled`, and a line
# taken back in a shortage); anything else is `other`, so the label stays bounded.
REJECT_REASONS = OVERSELL_REASONS | CONFIG_REASONS


def reject_reason(reason: str | None) -> str:
    """A bounded label for why a paid line was rejected."""
    return reason if reason in REJECT_REASONS else "other"


def rejected_paid(ledger, outputs: list) -> Tally:
    """(channel, reason) -> paid lines rejected in this batch.

    The emitter counts these by channel only, and an `order.status` names no channel: the
    reason comes from the status, the channel from the line it names. A line the ledger no
    longer knows still counts for its channel, as `other`, so per-channel totals stay exact.
    """
    by_channel = ledger.emit.oversold
    counts: Tally = Tally()
    placed: Tally = Tally()  # channel -> rejections given a reason
    for out in outputs:
        if type(out) is not OrderStatus or out.status != "rejected" or not out.paid:
            continue
        book = ledger.books.get(out.sku)
        line = book.line(out.order_id, out.line_id) if book is not None else None
        if line is not None and placed[line.channel] < by_channel.get(line.channel, 0):
            placed[line.channel] += 1
            counts[line.channel, reject_reason(out.reason)] += 1
    for channel, n in by_channel.items():
        if n > placed[channel]:
            counts[channel, "other"] += n - placed[channel]
    return counts


class Observer:
    """Turns what the router and the ledger buckets did into metric updates."""

    def __init__(self) -> None:
        self._state: dict[int, tuple[int, int, int]] = {}  # per ledger: its sizes
        self._held: dict[str, int] = {}  # sku -> units held, as each batch leaves them
        self._held_total = 0

    def routed(self, items: list, dead: list, duplicates_before: int,
               duplicates_after: int) -> None:
        kinds = Tally(type(item) for item in items)
        for kind, n in kinds.items():
            if kind is Malformed:
                continue
            if kind is ClockTick:
                CLOCK_TICKS.inc(n)
            else:
                EVENTS.labels(kind.__struct_config__.tag).inc(n)
        for letter in dead:  # a refusal names its reason; a malformed message, its error
            if type(letter) is not DeadLetter:  # the router's own alerts (clock_jump)
                continue
            DEAD_LETTERS.labels(letter.reason or dead_letter_reason(letter.error)).inc()
        if duplicates_after > duplicates_before:
            DUPLICATES.inc(duplicates_after - duplicates_before)

    def late(self, new_by_partition: dict[str, int]) -> None:
        for part, n in new_by_partition.items():
            LATE_EVENTS.labels(part).inc(n)

    def applied(self, ledger, outputs: list, by_stream: dict[str, list], read_at: float | None,
                oldest_ts_s: float | None, shortage_before: int) -> None:
        now = time.time()
        for stream, encoded in by_stream.items():
            OUTPUTS.labels(stream).inc(len(encoded))
        if read_at is not None:
            LATENCY.observe(max(0.0, now - read_at))
        if oldest_ts_s is not None:
            EVENT_LAG.observe(max(0.0, now - oldest_ts_s))
        if ledger.shortage_units > shortage_before:
            SHORTAGE_UNITS.inc(ledger.shortage_units - shortage_before)
        if ledger.emit.oversold:
            for (channel, reason), n in rejected_paid(ledger, outputs).items():
                OVERSOLD.labels(channel, reason).inc(n)
            ledger.emit.oversold.clear()
        if ledger.emit.settled:
            HOLDS_SETTLED.inc(ledger.emit.settled)
            ledger.emit.settled = 0
        ended = Tally(out.reason for out in outputs if type(out) is OrderStatus
                      and out.reason in ("hold_expired", "hold_released"))
        if ended:
            HOLDS_EXPIRED.inc(ended["hold_expired"])
            HOLDS_RELEASED.inc(ended["hold_released"])
        self._count_held(ledger, ledger.published_skus)

    def _count_held(self, ledger, skus) -> None:
        """Units held at these SKUs of the ledger: the gauge moves with every hold."""
        held = self._held
        for sku in skus:
            book = ledger.books.get(sku)
            now = sum(pos.held for pos in book.positions.values()) if book is not None else 0
            self._held_total += now - held.get(sku, 0)
            held[sku] = now
        HELD_UNITS.set(self._held_total)

    def state(self, ledger, seconds: float) -> None:
        """A bucket's sizes, when it is snapshotted (every epoch); gauges are per process.
        Every SKU's holds are counted again (after a restart, those no batch touched yet)."""
        SNAPSHOT_SECONDS.observe(seconds)
        positions = backorders = 0
        for book in ledger.books.values():
            positions += len(book.positions)
            for queue in book.backorders.values():
                backorders += len(queue)
        self._state[id(ledger)] = (len(ledger.books), positions, backorders)
        skus, positions, backorders = (sum(v) for v in zip(*self._state.values()))
        STATE_SKUS.set(skus)
        STATE_POSITIONS.set(positions)
        BACKORDERS_OPEN.set(backorders)
        self._count_held(ledger, ledger.books)

    def kafka_lag(self, topic: str, partition: int, lag: int) -> None:
        KAFKA_LAG.labels(topic, str(partition)).set(lag)

    def redis_error(self) -> None:
        REDIS_ERRORS.inc()


class ReservationCollector:
    """The reservation API's results, counted by the Redis functions, read at scrape time:
    summed over every copy of the counters (one per slot group on Redis Cluster)."""

    RESULTS = ("granted", "short", "line", "stale", "busy", "badarg")

    def __init__(self, client, stats_keys: tuple[str, ...]):
        self.client = client
        self.stats_keys = stats_keys

    def collect(self):
        pipe = self.client.pipeline(transaction=False)
        for key in self.stats_keys:
            pipe.hgetall(key)
        try:
            copies = pipe.execute()
        except (redis.RedisError, RedisClusterException):
            REDIS_ERRORS.inc()
            return
        stats: dict[str, int] = {}
        for copy in copies:
            for result, n in copy.items():
                stats[result.decode()] = stats.get(result.decode(), 0) + int(n)
        family = CounterMetricFamily(
            "stockflow_reservations", "Reservation API calls, by result.", labels=["result"])
        for result in self.RESULTS:
            family.add_metric([result], stats.get(result, 0))
        yield family


def write_metrics(path: str) -> None:
    """The registry's current values in the text exposition format (replay's --metrics)."""
    with open(path, "wb") as f:
        f.write(generate_latest(REGISTRY))
