"""What counts as a message: every Kafka value does, blank ones included; a file's blank
lines do not."""

from __future__ import annotations

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main
from confluent_kafka import Producer

from stockflow.connectors.codec import decode_lines
from stockflow.connectors.files import JsonLinesSource
from stockflow.connectors.kafka_admin import create_topics
from stockflow.connectors.kafka_source import KafkaChunkSource
from stockflow.ops.metrics import dead_letter_reason
from stockflow.state.events import Malformed, StockSnapshot

from .servers import unique_prefix

SNAPSHOT = (b'{"type":"stock.snapshot","event_id":"e1","ts":"2024-05-01T12:00:00Z",'
            b'"sku":"A","node":"n1","on_hand":3,"seq":1}')
BLANKS = [b"\x0c", b" ", b"", b"\r\n", b" \t\n"]


def decode_source(source, blank_is_message: bool = False) -> list:
    """Every chunk a source gives, `(name, first, values, ...)`, decoded in order."""
    chunks: list = []
    flow = Dataflow("codec_test")
    op.output("out", op.input("in", flow, source), TestingSink(chunks))
    run_main(flow)
    return [m for c in chunks for m in decode_lines(c[2], c[0], c[1], blank_is_message)]


def test_every_blank_kafka_value_is_a_dead_letter():
    out = decode_lines([SNAPSHOT, *BLANKS], "t.orders:0", 40, blank_is_message=True)

    assert isinstance(out[0], StockSnapshot)
    assert all(isinstance(m, Malformed) for m in out[1:]) and len(out) == 6
    assert [m.source for m in out[1:]] == [f"t.orders:0:{offset}" for offset in range(41, 46)]
    assert [dead_letter_reason(m.error) for m in out[1:]] == ["not_json"] * 5


def test_an_event_stamped_too_far_after_its_kafka_record_is_refused_as_ts_ahead():
    written = 1714564800000  # 2024-05-01T12:00:00Z: the snapshot's own ts
    out = decode_lines([SNAPSHOT] * 4, "t.stock:0", 7, True,
                       [written, written - 300_000, written - 300_001, -1], 300_000)
    assert [type(m) for m in out] == [StockSnapshot, StockSnapshot, Malformed, StockSnapshot]
    refused = out[2]
    assert (refused.reason, refused.source, refused.event_id) == ("ts_ahead", "t.stock:0:9", "e1")
    assert refused.raw == SNAPSHOT.decode() and "300 s" in refused.error
    # Without record times (a file) nothing is judged on them.
    assert all(type(m) is StockSnapshot
               for m in decode_lines([SNAPSHOT], "t.jsonl", 1, False, None, 300_000))


def test_blank_lines_are_not_messages_by_default():
    out = decode_lines([*BLANKS, SNAPSHOT], "events.jsonl", 1)

    assert len(out) == 1 and isinstance(out[0], StockSnapshot)


def test_a_file_with_blank_lines_gives_its_events_and_real_line_numbers(tmp_path):
    second = SNAPSHOT.replace(b'"e1"', b'"e2"')
    path = tmp_path / "events.jsonl"
    # Lines: 1 event, 2 empty, 3 spaces, 4 CRLF only, 5 not JSON, 6 form feed, 7 event.
    path.write_bytes(SNAPSHOT + b"\n\n   \n\r\n{not json\r\n\x0c\n" + second + b"\r\n")

    out = decode_source(JsonLinesSource(str(path), chunk_lines=3))

    assert [type(m) for m in out] == [StockSnapshot, Malformed, StockSnapshot]
    assert [out[0].event_id, out[2].event_id] == ["e1", "e2"]
    assert (out[1].raw, out[1].source) == ("{not json", "events.jsonl:5")


def test_blank_values_read_from_kafka_become_dead_letters(kafka_brokers):
    topic = unique_prefix() + "orders"
    create_topics(kafka_brokers, [topic], partitions=1)
    producer = Producer({"bootstrap.servers": kafka_brokers})
    for value in (b"\x0c", b" ", b""):
        producer.produce(topic, value=value)
    assert producer.flush(10) == 0

    out = decode_source(KafkaChunkSource(kafka_brokers, [topic], stop_at_end=True),
                        blank_is_message=True)

    assert all(isinstance(m, Malformed) for m in out)
    assert [m.source for m in out] == [f"{topic}:0:{offset}" for offset in range(3)]
