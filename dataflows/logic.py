"""Adapters that run the domain's router and ledger as Bytewax keyed state.

They hold a `state` object and forward batches to it; nothing here decides anything.
"""

from __future__ import annotations

import pickle

from bytewax.operators import StatefulBatchLogic

from stockflow.connectors.codec import encode_by_stream
from stockflow.state.config import EngineConfig
from stockflow.state.ledger import Ledger
from stockflow.state.routing import Router

DEAD_LETTERS = "dead"  # the router's output key for dead letters; buckets are "0".."n-1"


class RouterLogic(StatefulBatchLogic):
    """One per input partition: routes its decoded chunks to ledger buckets, in order."""

    def __init__(self, config: EngineConfig, durable: bool, resume: bytes | None):
        self.router = pickle.loads(resume) if resume is not None else Router(config)
        self.durable = durable

    def on_batch(self, chunks: list[list]):
        items = chunks[0] if len(chunks) == 1 else [i for chunk in chunks for i in chunk]
        work, dead = self.router.route(items)
        out = [(str(bucket), lst) for bucket, lst in work.items()]
        if dead:
            out.append((DEAD_LETTERS, dead))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self):
        return pickle.dumps(self.router, protocol=5) if self.durable else None


class LedgerLogic(StatefulBatchLogic):
    """One per bucket: applies its work and returns outputs encoded, grouped by stream."""

    def __init__(self, config: EngineConfig, durable: bool, resume: bytes | None):
        self.ledger = Ledger.restore(resume, config) if resume is not None else Ledger(config)
        self.durable = durable

    def on_batch(self, batches: list[list]):
        items = batches[0] if len(batches) == 1 else [w for batch in batches for w in batch]
        outputs = self.ledger.apply_batch(items)
        return list(encode_by_stream(outputs).items()), StatefulBatchLogic.RETAIN

    def snapshot(self):
        return self.ledger.snapshot() if self.durable else None
