"""The engine's recorded input, read back from Kafka: every input partition and the
checkout-intake journal, merged into the one order the engine applied them in.

`stockflow explain` (without `--events`), the live-mode tests and the benchmarks read it
here, so what they replay is what live mode decided on: the merge by event time
(state/alignment.py) over the input partitions, and each journalled checkout intake at the
place it names.
"""

from __future__ import annotations

import time

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from stockflow.state.alignment import merged
from stockflow.state.events import CheckoutTaken

from .codec import decode_lines
from .kafka_admin import input_topics, journal_topic
from .kafka_source import record_ms


def recorded_input(brokers: str, prefix: str, client_config: dict[str, str] | None = None,
                   max_ahead_s: float = 300.0) -> tuple[list[bytes], list[int]]:
    """Every message of the input topics under `prefix`, with the checkout intakes its
    journal recorded, in the order the engine applies them (a journal topic that does not
    exist, as with Redis off, journals nothing); and each one's record timestamp (ms, -1
    for the journal's), which a replay needs to refuse what live mode refused as stamped
    more than `max_ahead_s` after its record (`ts_ahead`)."""
    partitions = read_partitions(brokers, input_topics(prefix), client_config, timestamps=True)
    journal = read_partitions(brokers, [journal_topic(prefix)], client_config, missing_ok=True)
    return merged_recording(partitions, [v for values in journal.values() for v in values],
                            max_ahead_s)


def read_partitions(brokers: str, topics: list[str],
                    client_config: dict[str, str] | None = None,
                    missing_ok: bool = False, timestamps: bool = False) -> dict[str, list]:
    """`topic:partition` -> its messages in offset order; topics in the order given, each
    topic's partitions in number order (the engine's merge rank for input topics). A topic
    the broker does not have is an error, or nothing with `missing_ok`. With `timestamps`:
    (message, record timestamp ms) pairs."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "stockflow-reader",
                         "enable.partition.eof": True, "enable.auto.commit": False,
                         "log_level": 0, **(client_config or {})})
    try:
        try:
            meta = consumer.list_topics(timeout=10)
        except KafkaException as exc:  # one line, as every command says it
            raise RuntimeError(f"cannot reach Kafka at {brokers}: {exc.args[0].str()}") from None
        absent = [t for t in topics if t not in meta.topics or meta.topics[t].error is not None]
        if absent and not missing_ok:
            raise RuntimeError(f"no such topic at {brokers}: {', '.join(absent)}")
        parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics if t not in absent
                 for p in sorted(meta.topics[t].partitions)]
        found: dict[str, list[bytes]] = {f"{tp.topic}:{tp.partition}": [] for tp in parts}
        if parts:
            consumer.assign(parts)
        pending = set(found)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for m in consumer.consume(5000, timeout=0.5):
                name = f"{m.topic()}:{m.partition()}"
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(m.error().str())
                    pending.discard(name)
                    continue
                value = m.value() or b"null"  # as the engine's source reads it
                found[name].append((value, record_ms(m)) if timestamps else value)
    finally:
        consumer.close()
    if pending:
        raise RuntimeError(f"partitions not read to their end: {sorted(pending)}")
    return found


def merged_recording(partitions: dict[str, list[tuple[bytes, int]]], journal: list[bytes],
                     max_ahead_s: float) -> tuple[list[bytes], list[int]]:
    """Recorded input partitions (in merge rank, as (message, record timestamp) pairs) as
    one stream, in the order the engine applies them, with the checkout intakes its journal
    recorded each in its place: what `stockflow replay` must be given to decide as live mode
    did; and each line's record timestamp (-1 for the journal's). A message refused as
    stamped too far after its record keeps its place as live mode's decoder left it: a dead
    letter."""
    ahead_ms = int(max_ahead_s * 1000)
    decoded = []
    for name, values in partitions.items():
        decoded.append([_Keep(decode_lines([v], name, 0, True, [ms], ahead_ms)[0], v, ms)
                        for v, ms in values])
    kept = merged(decoded)
    placed = _interleave([k.raw for k in kept], journal)
    return ([raw for raw, _ in placed], [-1 if i is None else kept[i].stamp for _, i in placed])


_DECODE_TAKEN = msgspec.json.Decoder(CheckoutTaken).decode


def with_journal(merged_messages: list[bytes], journal: list[bytes]) -> list[bytes]:
    """The merged input with each journalled checkout intake before the message its position
    names (`CheckoutTaken.at`: 2q before the q-th message, 2q + 1 after it); an intake
    journalled twice (a rerun after a restart) once."""
    return [raw for raw, _ in _interleave(merged_messages, journal)]


def _interleave(merged_messages: list[bytes], journal: list[bytes]) -> list:
    """(line, its index in `merged_messages`, or None for a journal line), in `with_journal`'s
    order."""
    found: dict[str, tuple[int, int, bytes]] = {}
    for raw in journal:
        taken = _DECODE_TAKEN(raw)
        found.setdefault(taken.event_id, (taken.at, taken.n, raw))
    before: dict[int, list[bytes]] = {}
    for at, _, raw in sorted(found.values()):
        before.setdefault((at + 1) // 2 - 1, []).append(raw)
    out: list = []
    for i, message in enumerate(merged_messages):
        out.extend((raw, None) for raw in before.pop(i, ()))
        out.append((message, i))
    for i in sorted(before):  # after the last message read
        out.extend((raw, None) for raw in before[i])
    return out


class _Keep:
    """A message with the event it decodes to: merged by the event's time, kept as bytes."""

    __slots__ = ("ts", "raw", "stamp")

    def __init__(self, event, raw: bytes, stamp: int = -1):
        self.ts = getattr(event, "ts", None)
        self.raw = raw
        self.stamp = stamp
