"""Malformed messages among valid ones, on every input topic: each one becomes a dead letter
with its reason, and the valid events decide as if the others were never sent."""

from __future__ import annotations

import random

from stockflow.connectors.codec import decode_message
from stockflow.ops.bench.kafka_runs import topic_of
from stockflow.state.events import Malformed

from ..live_runs import LAYOUT, LiveRun, generated_trace
from ..servers import unique_prefix
from .figures import FIGURES
from .judge import judge

# Every kind of message that is not an event: not JSON, truncated, unknown type, a missing
# field, a wrong type, a broken rule, empty, whitespace only, a JSON value that is no object.
SHAPES = [
    b"not json at all", b'{"type":"order.created","order_id":', b'{"type":"order.shredded",'
    b'"event_id":"x","ts":"2026-11-10T00:00:00Z"}', b'{"type":"order.paid","ts":'
    b'"2026-11-10T00:00:00Z"}', b'{"type":"stock.adjusted","event_id":"w","ts":"2026-11-10T'
    b'00:00:00Z","sku":"K","node":"N","delta":"many","reason":"x"}', b'{"type":"order.created",'
    b'"event_id":"q","ts":"2026-11-10T00:00:00Z","order_id":"Q","channel":"c","lines":[{"line_id":'
    b'"1","sku":"K","qty":0}],"ship_to":{"region":"r","lat":0,"lon":0},"fulfillment":"ship",'
    b'"paid":true}', b"", b" ", b"\x0c", b"\t", b"[]", b"null", b"42",
]


def test_malformed_messages_are_dead_letters_and_change_nothing(kafka_brokers, redis_url,
                                                               tmp_path, full):
    bad_n, trace_events = (10_000, 6_000) if full else (2_000, 3_000)
    trace = generated_trace(tmp_path, events=trace_events, seed=41, skus=100, stores=4)
    valid = [line for line in trace.read_bytes().splitlines() if line.strip()]
    generated_bad = sum(type(decode_message(line, "trace")) is Malformed for line in valid)
    rnd = random.Random(41)
    mixed = list(valid)
    for _ in range(bad_n):
        mixed.insert(rnd.randrange(len(mixed) + 1), rnd.choice(SHAPES))
    run = LiveRun(kafka_brokers, redis_url, unique_prefix(), tmp_path)
    run.create_topics(LAYOUT)
    kept = set(valid)
    run.produce(mixed, lambda line: topic_of(line) if line in kept else
                (rnd.choice(("master", "stock", "orders")), None))
    run.drain()
    figures = judge(run)
    FIGURES.add("malformed input", malformed_sent=bad_n + generated_bad,
                dead_letters=figures["dead_letters"], effects_lost=figures["effects_lost"],
                effects_duplicated=figures["effects_duplicated"])
    assert figures["dead_letters"] == bad_n + generated_bad
    assert figures["effects_lost"] == figures["effects_duplicated"] == 0
