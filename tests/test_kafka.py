"""Kafka connectors against a real broker (tansu): topics, the chunk source, the stream sink."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timezone

import msgspec
import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, poll_next_batch, run_main
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from stockflow.connectors.codec import decode_lines, encode_by_stream
from stockflow.connectors.kafka_admin import create_topics, input_topics, output_topics
from stockflow.connectors.kafka_sink import KafkaStreamSink
from stockflow.connectors.kafka_source import KafkaChunkSource
from stockflow.state.events import Malformed
from stockflow.state.outputs import (
    STREAM_OF, STREAMS, Alert, AvailabilityChanged, DeadLetter, DispatchAllocate, OrderStatus,
    ReplenishmentRequested,
)

from .servers import free_port, unique_prefix

QUIET = {"log_level": "0"}  # the tests assert on errors; librdkafka's log lines are noise
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def partitions_of(brokers: str, topic: str) -> int:
    topics = AdminClient({"bootstrap.servers": brokers}).list_topics(timeout=5).topics
    return len(topics[topic].partitions)


def produce(brokers: str, topic: str, messages: list[tuple[bytes | None, bytes | None]]):
    """Produces (key, value) pairs; returns {partition: [value in offset order]}."""
    delivered: dict[int, list[tuple[int, bytes | None]]] = defaultdict(list)

    def on_delivery(err, msg):
        assert err is None, err
        delivered[msg.partition()].append((msg.offset(), msg.value()))

    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for key, value in messages:
        producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
    assert producer.flush(10) == 0
    return {p: [v for _, v in sorted(offs)] for p, offs in delivered.items()}


def read_topics(brokers: str, topics: list[str]) -> dict[str, list[tuple]]:
    """Every message of each topic as (partition, key, value), each partition read to its end."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "reader",
                         "enable.partition.eof": True, "fetch.wait.max.ms": 50, **QUIET})
    meta = AdminClient({"bootstrap.servers": brokers}).list_topics(timeout=5).topics
    parts = {(t, p) for t in topics for p in meta[t].partitions}
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in parts])
    out: dict = {t: [] for t in topics}
    ended: set = set()
    deadline = time.monotonic() + 10
    while ended != parts and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=0.1):
            if msg.error() is None:
                out[msg.topic()].append((msg.partition(), msg.key(), msg.value()))
            elif msg.error().code() == KafkaError._PARTITION_EOF:
                ended.add((msg.topic(), msg.partition()))
            else:
                raise RuntimeError(msg.error())
    consumer.close()
    assert ended == parts, f"partitions {parts - ended} did not reach their end"
    return out


# -- topics ------------------------------------------------------------------------------


def test_create_topics_makes_inputs_and_outputs_and_tolerates_existing_ones(kafka_brokers):
    prefix = unique_prefix()
    names = input_topics(prefix) + output_topics(prefix)
    assert names[:3] == [prefix + "master", prefix + "stock", prefix + "orders"]  # merge rank
    assert names[3:] == [prefix + s for s in STREAMS]

    assert sorted(create_topics(kafka_brokers, names, partitions=2)) == sorted(names)
    assert all(partitions_of(kafka_brokers, name) == 2 for name in names)

    assert create_topics(kafka_brokers, names, partitions=2) == []
    extra = prefix + "extra"
    assert create_topics(kafka_brokers, {names[0]: 2, extra: 1}) == [extra]
    assert partitions_of(kafka_brokers, extra) == 1


def test_create_topics_fails_loudly_without_a_broker():
    nobody = f"127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match=f"cannot reach Kafka at {nobody}"):
        create_topics(nobody, ["orders"], client_config=QUIET, timeout=2)


# -- source ------------------------------------------------------------------------------


def run_source(source: KafkaChunkSource) -> list[tuple[str, int, list[bytes]]]:
    """(partition, first offset, values) of every chunk with messages; a drain's last chunk
    of each partition says it ended (checked here, then left out)."""
    chunks: list = []
    flow = Dataflow("kafka_source_test")
    op.output("out", op.input("in", flow, source), TestingSink(chunks))
    run_main(flow)
    ended = [c.source for c in chunks if c.end]
    assert sorted(ended) == sorted(set(c.source for c in chunks)), "every partition ends once"
    assert all(not c.end for c in chunks if c is not _last_of(chunks, c.source))
    return [(c.source, c.first, c.values) for c in chunks if c.values]


def _last_of(chunks: list, source: str):
    return [c for c in chunks if c.source == source][-1]


def test_source_reads_every_message_once_in_offset_order(kafka_brokers):
    topic = unique_prefix() + "orders"
    create_topics(kafka_brokers, [topic], partitions=2)
    messages = [(f"k{i % 5}".encode(), b'{"n":%d}' % i) for i in range(60)] + [(b"k0", None)]
    sent = produce(kafka_brokers, topic, messages)
    assert set(sent) == {0, 1}

    chunks = run_source(KafkaChunkSource(kafka_brokers, [topic], batch_size=7, stop_at_end=True))

    read: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for name, first, values in chunks:
        assert 0 < len(values) <= 7
        read[name].extend((first + i, v) for i, v in enumerate(values))
    assert set(read) == {f"{topic}:0", f"{topic}:1"}
    for partition, values in sent.items():
        got = read[f"{topic}:{partition}"]
        assert [offset for offset, _ in got] == list(range(len(values)))
        assert [v for _, v in got] == [b"null" if v is None else v for v in values]


def test_a_tombstone_becomes_a_dead_letter_not_a_silent_drop(kafka_brokers):
    topic = unique_prefix() + "orders"
    create_topics(kafka_brokers, [topic], partitions=1)
    produce(kafka_brokers, topic, [(b"k", None)])

    [(name, first, values)] = run_source(KafkaChunkSource(kafka_brokers, [topic], stop_at_end=True))

    assert (name, first, values) == (f"{topic}:0", 0, [b"null"])
    [bad] = decode_lines(values, name, first)
    assert isinstance(bad, Malformed) and bad.source == f"{topic}:0:0"


def test_source_lists_one_partition_per_kafka_partition_and_refuses_missing_topics(kafka_brokers):
    prefix = unique_prefix()
    create_topics(kafka_brokers, {prefix + "orders": 2, prefix + "stock": 3})
    source = KafkaChunkSource(kafka_brokers, [prefix + "orders", prefix + "stock"])
    assert source.list_parts() == [f"{prefix}orders:0", f"{prefix}orders:1",
                                   f"{prefix}stock:0", f"{prefix}stock:1", f"{prefix}stock:2"]

    with pytest.raises(RuntimeError, match="does not exist"):
        KafkaChunkSource(kafka_brokers, [prefix + "missing"]).list_parts()


def test_source_resumes_at_the_snapshot_offset_and_reports_lag(kafka_brokers):
    topic = unique_prefix() + "stock"
    create_topics(kafka_brokers, [topic], partitions=1)
    produce(kafka_brokers, topic, [(None, b"%d" % i) for i in range(10)])
    source = KafkaChunkSource(kafka_brokers, [topic], batch_size=3, client_config=QUIET)

    part = source.build_part("in", f"{topic}:0", 6)
    assert part.snapshot() == 6
    [chunk] = poll_next_batch(part)
    assert chunk[:4] == (f"{topic}:0", 6, [b"6", b"7", b"8"], False)
    assert len(chunk.stamps) == 3 and all(ms > 0 for ms in chunk.stamps)  # record times
    assert part.snapshot() == 9
    assert part.lag() == 1

    [(_, first, values, _, _)] = poll_next_batch(part)
    assert (first, values) == (9, [b"9"])
    assert part.snapshot() == 10 and part.lag() == 0
    # Tailing: nothing new is an empty batch and a short sleep, not the end.
    assert part.next_batch() == []
    assert part.next_awake() is not None
    part.close()


def test_source_from_the_end_skips_history_and_snapshots_where_it_starts(kafka_brokers):
    topic = unique_prefix() + "stock"
    create_topics(kafka_brokers, [topic], partitions=1)
    # One message per produce: tansu 0.6 answers "latest offset" with the last batch's
    # first offset + 1, which is only the true end when batches hold one message.
    for i in range(3):
        produce(kafka_brokers, topic, [(None, b"old%d" % i)])
    source = KafkaChunkSource(kafka_brokers, [topic], from_beginning=False, client_config=QUIET)

    part = source.build_part("in", f"{topic}:0", None)
    assert part.snapshot() == 3
    produce(kafka_brokers, topic, [(None, b"new")])
    assert [c[:4] for c in poll_next_batch(part)] == [(f"{topic}:0", 3, [b"new"], False)]
    part.close()


# -- sink --------------------------------------------------------------------------------


OUTPUTS = [
    OrderStatus(ts=T0, cause="e1", order_id="o1", line_id="l1", sku="A", status="held", qty=1),
    OrderStatus(ts=T0, cause="e2", order_id="o2", line_id="l1", sku="B", status="held", qty=2),
    DispatchAllocate(ts=T0, cause="e3", command_id="c1", order_id="o1", line_id="l1", sku="A",
                     node="n1", qty=1, channel="web"),
    AvailabilityChanged(ts=T0, cause="e3", sku="A", channel="web", available=4,
                        max_line_qty=4),
    ReplenishmentRequested(ts=T0, cause="e4", command_id="c2", sku="B", node="n1", qty=10,
                           reason="below_min"),
    Alert(ts=T0, cause="e4", kind="low_stock", sku="B", detail="2 left"),
    DeadLetter(ts=T0, cause="e5", raw="{", error="bad json", source="orders.jsonl:3"),
]
EXPECTED_KEY = {"order-status": "order_id", "dispatch": "sku", "availability": "sku",
                "replenishment": "sku", "alerts": "sku"}


def test_sink_writes_each_stream_to_its_topic_keyed(kafka_brokers):
    prefix = unique_prefix()
    create_topics(kafka_brokers, output_topics(prefix), partitions=3)
    items = list(encode_by_stream(OUTPUTS).items())
    assert {stream for stream, _ in items} == set(STREAMS)

    flow = Dataflow("kafka_sink_test")
    op.output("out", op.input("in", flow, TestingSource(items)),
              KafkaStreamSink(kafka_brokers, topic_prefix=prefix))
    run_main(flow)

    expected = defaultdict(list)
    for output in OUTPUTS:
        stream = STREAM_OF[type(output)]
        field = EXPECTED_KEY.get(stream)
        key = None if field is None else getattr(output, field).encode()
        expected[stream].append((key, msgspec.json.encode(output)))
    topics = read_topics(kafka_brokers, output_topics(prefix))
    for stream in STREAMS:
        got = topics[prefix + stream]
        assert sorted((k, v) for _, k, v in got) == sorted(expected[stream]), stream
        by_key = defaultdict(set)
        for partition, key, _ in got:
            by_key[key].add(partition)
        assert all(len(ps) == 1 for k, ps in by_key.items() if k is not None), by_key


def test_sink_uses_a_given_key_function(kafka_brokers):
    prefix = unique_prefix()
    create_topics(kafka_brokers, [prefix + "alerts"])
    part = KafkaStreamSink(kafka_brokers, topic_prefix=prefix,
                           key_of=lambda stream, value: stream.encode()).build("out", 0, 1)
    part.write_batch([("alerts", [b'{"a":1}', b'{"a":2}'])])
    part.close()
    got = read_topics(kafka_brokers, [prefix + "alerts"])[prefix + "alerts"]
    assert sorted((key, value) for _, key, value in got) == [(b"alerts", b'{"a":1}'),
                                                              (b"alerts", b'{"a":2}')]


def test_sink_raises_when_delivery_fails():
    nobody = f"127.0.0.1:{free_port()}"
    sink = KafkaStreamSink(nobody, client_config={"message.timeout.ms": "2000", **QUIET})
    part = sink.build("out", 0, 1)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="kafka delivery failed for topic stockflow.dispatch"):
        part.write_batch([("dispatch", [b'{"sku":"A"}'])])
    assert time.monotonic() - started < 8
    part.close()
