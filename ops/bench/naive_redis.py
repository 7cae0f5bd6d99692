"""Baseline: a naive Redis allocator, one Lua call per order line.

Stock is one hash per SKU (node -> on hand). The script picks the node with the most on hand
that fills the line and decrements it atomically; Redis runs scripts one at a time, so there
is no lock and nothing to roll back. Every run uses a key prefix of its own, deleted after.
"""

from __future__ import annotations

import secrets

import redis

from .settings import BenchSettings
from .workload import Line, Workload, allocated_units, check_books, replay, summary

DEFAULT_URL = BenchSettings().redis_url

# KEYS[1]: the SKU's stock hash; ARGV[1]: units wanted. Returns the node, or nil.
# Same rule as the row-lock baseline: most on hand, ties to the lowest node.
_ALLOCATE = """
local want = tonumber(ARGV[1])
local flat = redis.call('HGETALL', KEYS[1])
local best, most = false, -1
for i = 1, #flat, 2 do
  local qty = tonumber(flat[i + 1])
  if qty >= want and (qty > most or (qty == most and flat[i] < best)) then
    best, most = flat[i], qty
  end
end
if best then redis.call('HINCRBY', KEYS[1], best, -want) end
return best
"""


def run_naive_redis(workload: Workload, clients: int, url: str = DEFAULT_URL,
                    limit_lines: int | None = None) -> dict:
    """Allocates the workload's lines (the first `limit_lines`) with `clients` connections;
    returns throughput, latency, outcomes and whether the books balance."""
    lines = workload.lines[:limit_lines]
    prefix = f"bench-{secrets.token_hex(4)}"
    admin = redis.Redis.from_url(url, decode_responses=True)
    keys = {sku: _key(prefix, sku) for sku, _ in workload.stock}
    try:
        _load(admin, keys, workload.stock)
        sha = admin.script_load(_ALLOCATE)

        def allocate(client: redis.Redis, line: Line) -> str | None:
            return client.evalsha(sha, 1, _key(prefix, line[2]), line[3])

        run = replay(lines, clients, lambda: _connect(url), allocate)
        remaining = _remaining(admin, keys)
        consistent = check_books(workload.stock, remaining, allocated_units(run.placed))
    finally:
        names = list(keys.values())
        for i in range(0, len(names), 1000):
            admin.delete(*names[i:i + 1000])
        admin.close()
    return summary("redis-lua", clients, run, consistent)


def _key(prefix: str, sku: str) -> str:
    return f"{prefix}:{{{sku}}}:stock"  # the hash tag keeps a SKU on one cluster slot


def _connect(url: str) -> redis.Redis:
    # One connection per client, opened now so the clock does not see it.
    client = redis.Redis.from_url(url, decode_responses=True)
    client.ping()
    return client


def _load(admin: redis.Redis, keys: dict[str, str], stock: dict[tuple[str, str], int]) -> None:
    by_sku: dict[str, dict[str, int]] = {}
    for (sku, node), qty in stock.items():
        by_sku.setdefault(sku, {})[node] = qty
    pipe = admin.pipeline(transaction=False)
    for sku, nodes in by_sku.items():
        pipe.hset(keys[sku], mapping=nodes)
    pipe.execute()


def _remaining(admin: redis.Redis, keys: dict[str, str]) -> dict[tuple[str, str], int]:
    pipe = admin.pipeline(transaction=False)
    for key in keys.values():
        pipe.hgetall(key)
    remaining = {}
    for sku, nodes in zip(keys, pipe.execute()):
        for node, qty in nodes.items():
            remaining[sku, node] = int(qty)
    return remaining
