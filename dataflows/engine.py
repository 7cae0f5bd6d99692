"""The engine as a story: decode, merge the inputs by event time, route, apply the ledger, emit.

    raw chunks (per input partition) -> decode
        -> align_and_route (one sequencer: merge by event time, dedup, clock, orders, holds)
        -> apply_ledger (per SKU bucket) -> (stream, encoded outputs)
           live: read model fenced before it, written after it (read_model_steps.py)
           dead letters -------------------^
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Stream

from stockflow.connectors import exchange
from stockflow.connectors.chunks import Decoded, RawChunk
from stockflow.connectors.codec import decode_lines, encode_by_stream
from stockflow.state.config import EngineConfig

from .logic import DEAD_LETTERS, AlignTiming, LedgerLogic, SequencerLogic
from .ports import Observer, ReadModel, Ticker
from .read_model_steps import fence, write

SEQUENCER = "sequencer"  # the one key every input partition's events meet under

exchange.register()  # events cross processes as msgpack


def engine(raw: Stream, config: EngineConfig, partitions: list[str] = (),
           timing: AlignTiming = AlignTiming(), durable: bool = False,
           store: ReadModel | None = None, ticker: Ticker | None = None,
           observer: Observer | None = None, blank_is_message: bool = False) -> Stream:
    """Raw chunks in; `(stream, [json bytes])` out.

    `partitions`: every input partition, ranked (ties in event time go to the first), so
    the merge waits for each from the start. Live mode passes a read-model `store` (Redis) and
    a `ticker` that writes `clock.tick` events; an `observer` (ops.metrics) sees every batch.
    `blank_is_message`: a blank input is a message to dead-letter (Kafka), not a blank line
    of a file to skip.
    """

    max_ahead_ms = int(timing.max_ahead_s * 1000)

    def decode(chunk: RawChunk) -> tuple[str, Decoded]:
        events = decode_lines(chunk.values, chunk.source, chunk.first, blank_is_message,
                              chunk.stamps, max_ahead_ms)
        return SEQUENCER, Decoded(chunk.source, events, chunk.end)

    decoded = op.map("decode", raw, decode)
    routed = op.stateful_batch(
        "align_and_route", decoded,
        lambda resume: SequencerLogic(config, list(partitions), timing, durable, resume,
                                      ticker, observer, store),
    )
    routed = op.key_rm("routed", routed)
    split = op.branch("dead_letters_aside", routed, lambda kv: kv[0] == DEAD_LETTERS)
    dead = op.flat_map("encode_dead_letters", split.trues, lambda kv: encode_by_stream(kv[1]).items())
    work = split.falses
    if store is not None:
        work = op.flat_map_batch("fence_read_model", work, fence(store))
    applied = op.stateful_batch(
        "apply_ledger", work,
        lambda resume: LedgerLogic(config, durable, resume, store, observer),
    )
    applied = op.key_rm("applied", applied)
    if store is not None:
        applied = op.flat_map_batch("write_read_model", applied, write(store))
    return op.merge("outputs", applied, dead)
