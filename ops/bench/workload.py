"""The baselines' workload, how it is replayed through N clients, and the books it must balance.

The workload is the first stock snapshot of every (sku, node) of a trace and every order line
the engine would accept, in trace order. Every baseline replays it through the same driver,
so their numbers differ only by the allocator.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable

import msgspec

from stockflow.connectors.codec import decode_message
from stockflow.state.events import OrderCreated, StockSnapshot

Line = tuple[str, str, str, int]  # order_id, line_id, sku, qty


class Workload(msgspec.Struct, frozen=True):
    stock: dict[tuple[str, str], int]  # (sku, node) -> on hand at its first snapshot
    lines: list[Line]  # every accepted order line, in trace order


def load_workload(path: str) -> Workload:
    """Reads a JSON Lines trace; returns its initial stock and order lines.

    Messages the engine would dead-letter are skipped, and so is an `order.created` whose
    event or order was already seen: the contract gives a resend no effect.
    """
    stock: dict[tuple[str, str], int] = {}
    lines: list[Line] = []
    seen_events: set[str] = set()
    seen_orders: set[str] = set()
    with open(path, "rb") as trace:
        for raw in trace:
            event = decode_message(raw, path)
            if isinstance(event, StockSnapshot):
                stock.setdefault((event.sku, event.node), event.on_hand)
            elif isinstance(event, OrderCreated):
                if event.event_id in seen_events or event.order_id in seen_orders:
                    continue
                seen_events.add(event.event_id)
                seen_orders.add(event.order_id)
                lines.extend((event.order_id, line.line_id, line.sku, line.qty)
                             for line in event.lines)
    return Workload(stock, lines)


# -- replay ------------------------------------------------------------------------------


class Replay(msgspec.Struct):
    seconds: float  # wall time of the allocation phase only
    latencies_ns: list[int]  # one per allocation call
    placed: list[tuple[str, str, int]]  # (sku, node, qty) of every allocated line
    rejected: int


class _Client(msgspec.Struct):
    latencies_ns: list[int] = []
    placed: list[tuple[str, str, int]] = []
    rejected: int = 0
    error: BaseException | None = None


def replay(lines: list[Line], clients: int, connect: Callable, allocate: Callable) -> Replay:
    """Deals `lines` round-robin to `clients` threads, each with its own `connect()`ion;
    `allocate(conn, line)` returns the node a line went to, or None.

    Connections open before the clock starts and close after it stops.
    """
    start = threading.Barrier(clients + 1)
    results = [_Client() for _ in range(clients)]
    threads = [
        threading.Thread(target=_run_client, name=f"bench-client-{i}",
                         args=(lines[i::clients], connect, allocate, start, results[i]))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass  # a client could not connect: its error is raised below
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    for result in results:
        if result.error is not None:
            raise result.error
    return Replay(
        seconds,
        [ns for r in results for ns in r.latencies_ns],
        [p for r in results for p in r.placed],
        sum(r.rejected for r in results),
    )


def _run_client(share, connect, allocate, start, out: _Client) -> None:
    try:
        conn = connect()
    except BaseException as exc:
        out.error = exc
        start.abort()
        return
    try:
        start.wait()
        clock = time.perf_counter_ns
        for line in share:
            began = clock()
            node = allocate(conn, line)
            out.latencies_ns.append(clock() - began)
            if node is None:
                out.rejected += 1
            else:
                out.placed.append((line[2], node, line[3]))
    except BaseException as exc:
        out.error = exc
    finally:
        conn.close()


# -- results -----------------------------------------------------------------------------


def allocated_units(placed: list[tuple[str, str, int]]) -> Counter:
    """(sku, node) -> units allocated there."""
    units: Counter = Counter()
    for sku, node, qty in placed:
        units[sku, node] += qty
    return units


def check_books(initial: dict, remaining: dict, allocated: dict) -> bool:
    """True when no stock went negative and allocated + remaining == initial everywhere;
    raises AssertionError (a bug in the baseline) otherwise."""
    negative = {key: qty for key, qty in remaining.items() if qty < 0}
    assert not negative, f"stock went negative: {dict(list(negative.items())[:5])}"
    assert set(remaining) == set(initial), "the stock rows are not the ones loaded"
    off = {key: (initial[key], allocated.get(key, 0), remaining[key]) for key in initial
           if allocated.get(key, 0) + remaining[key] != initial[key]}
    assert not off, f"(initial, allocated, remaining) do not add up: {dict(list(off.items())[:5])}"
    assert set(allocated) <= set(initial), "units allocated from a node that has no stock row"
    return True


def summary(system: str, clients: int, run: Replay, consistent: bool) -> dict:
    """The numbers a baseline reports for one run."""
    latencies = sorted(run.latencies_ns)
    n = len(latencies)
    return {
        "system": system,
        "clients": clients,
        "lines": n,
        "seconds": round(run.seconds, 3),
        "lines_per_s": round(n / run.seconds, 1) if run.seconds > 0 else 0.0,
        "p50_ms": _percentile_ms(latencies, 0.50),
        "p99_ms": _percentile_ms(latencies, 0.99),
        "allocated": len(run.placed),
        "rejected": run.rejected,
        "consistent": consistent,
    }


def _percentile_ms(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return 0.0
    return round(sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6, 3)
