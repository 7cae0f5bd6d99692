"""The whole engine in one process, without Bytewax: aligner and router feeding ledger buckets.

The dataflow runs the same pieces as keyed steps; this drives them directly, for tests, for
checking the promise after every event, and for embedding.
"""

from __future__ import annotations

from .alignment import Aligner
from .config import EngineConfig
from .context import SourcingObserver
from .ledger import Ledger
from .outputs import OutputEvent
from .routing import Router


class Engine:
    def __init__(self, config: EngineConfig | None = None, partitions: list[str] = (),
                 explain: SourcingObserver | None = None) -> None:
        self.config = config or EngineConfig()
        self.explain = explain  # sees every sourcing decision (stockflow explain)
        self.aligner = Aligner(partitions, max_jump_ms=int(self.config.max_clock_jump_s * 1000))
        self.router = Router(self.config)
        self.ledgers: dict[int, Ledger] = {}
        self.restarted = False  # set on an engine rebuilt from snapshots

    def ledger(self, bucket: int) -> Ledger:
        ledger = self.ledgers.get(bucket)
        if ledger is None:
            ledger = self.ledgers[bucket] = Ledger(self.config)
            ledger.explain = self.explain
            if self.restarted:  # as a restored one: its first publications say everything
                ledger.republished = set()
        return ledger

    def process(self, items: list) -> list[OutputEvent]:
        """Route a batch of decoded events and apply it; returns every output it caused."""
        work, dead = self.router.route(items)
        out: list[OutputEvent] = list(dead)
        for bucket in sorted(work):
            out.extend(self.ledger(bucket).apply_batch(work[bucket]))
        return out

    def end(self) -> list[OutputEvent]:
        """The input ended: an event the clock guard still holds back is refused."""
        return self.router.end()

    def arrive(self, part: str, events: list, end: bool = False) -> list[OutputEvent]:
        """Events of one input partition as they arrive; applies whatever the merge of all
        partitions by event time lets go (see `alignment.py`)."""
        self.aligner.add(part, events, 0, end)
        return self.process(self.aligner.release(0))

    def books(self):
        """(sku, book) for every SKU the engine knows."""
        for ledger in self.ledgers.values():
            yield from ledger.books.items()
