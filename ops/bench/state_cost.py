"""Cost of state: memory and snapshot bytes per SKU x node, snapshot and restore time.

A ledger is filled with `entries` positions (SKUs x nodes) through its own event handlers, so
the state is what the engine really keeps; then snapshotted and restored.
"""

from __future__ import annotations

import gc
import os
import time
from datetime import datetime, timezone

from stockflow.state.config import EngineConfig
from stockflow.state.events import StockSnapshot
from stockflow.state.ledger import Ledger

_T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_state_cost(entries: int = 1_000_000, nodes: int = 5) -> dict:
    config = EngineConfig()
    skus = entries // nodes
    gc.collect()
    before = _rss_bytes()
    ledger = Ledger(config)
    started = time.perf_counter()
    seq = 0
    for i in range(skus):
        sku = f"SKU-{i:07d}"
        for j in range(nodes):
            seq += 1
            ev = StockSnapshot(event_id=f"s{seq}", ts=_T0, sku=sku, node=f"N{j}",
                               on_hand=10 + i % 90, seq=1)
            ledger.apply((0, seq, ev, ev, None))
    ledger.publish_availability()
    ledger.emit.drain()
    fill_s = time.perf_counter() - started
    gc.collect()
    memory = _rss_bytes() - before
    started = time.perf_counter()
    snapshot = ledger.snapshot()
    snapshot_s = time.perf_counter() - started
    del ledger
    gc.collect()
    started = time.perf_counter()
    restored = Ledger.restore(snapshot, config)
    restore_s = time.perf_counter() - started
    n = sum(len(book.positions) for book in restored.books.values())
    return {
        "entries": n, "skus": skus, "nodes": nodes,
        "memory_bytes_per_entry": round(memory / n, 1),
        "snapshot_bytes_per_entry": round(len(snapshot) / n, 1),
        "snapshot_mb": round(len(snapshot) / 1e6, 1),
        "fill_s": round(fill_s, 2), "snapshot_s": round(snapshot_s, 3),
        "restore_s": round(restore_s, 2),
    }
