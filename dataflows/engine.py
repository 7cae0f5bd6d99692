"""The engine as a story: decode, route bad input aside, route by SKU, apply the ledger, emit.

    raw chunks -> decode -> route (per input partition: dedup, clock, orders, holds' deadlines)
               -> apply_ledger (per SKU bucket) -> (stream, encoded outputs)
                  dead letters ---------------------^
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Stream

from stockflow.connectors.codec import decode_lines, encode_by_stream
from stockflow.state.config import EngineConfig

from .logic import DEAD_LETTERS, LedgerLogic, RouterLogic


def engine(raw: Stream, config: EngineConfig, durable: bool = False, store=None,
           clock_tick_s: float | None = None, observer=None) -> Stream:
    """Raw chunks `(source, first_line, [bytes])` in; `(stream, [json bytes])` out.

    Live mode passes a read-model `store` (Redis) and a wall-clock tick for the router;
    an `observer` (ops.metrics) sees every batch.
    """
    decoded = op.map("decode", raw, lambda chunk: (chunk[0], decode_lines(chunk[2], chunk[0], chunk[1])))
    routed = op.stateful_batch(
        "route", decoded,
        lambda resume: RouterLogic(config, durable, resume, clock_tick_s, observer),
    )
    routed = op.key_rm("routed", routed)
    split = op.branch("dead_letters_aside", routed, lambda kv: kv[0] == DEAD_LETTERS)
    dead = op.flat_map("encode_dead_letters", split.trues, lambda kv: encode_by_stream(kv[1]).items())
    applied = op.stateful_batch(
        "apply_ledger", split.falses,
        lambda resume: LedgerLogic(config, durable, resume, store, observer),
    )
    applied = op.key_rm("applied", applied)
    return op.merge("outputs", applied, dead)
