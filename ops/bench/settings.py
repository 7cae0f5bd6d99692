"""What `stockflow bench` measures unless told otherwise: the one place its defaults live."""

from __future__ import annotations

import msgspec

from ..config import RedisSettings


class BenchSettings(msgspec.Struct, frozen=True, kw_only=True):
    out: str = "bench-results"  # results.json, results.md, bench.png
    events: int = 200_000  # size of the generated workload (seed 7)
    redis_url: str = RedisSettings().url  # the Redis live mode would use
    postgres: str = "postgresql://postgres@127.0.0.1:5432/test"  # for the row-lock allocator
    baseline_lines: int = 50_000  # order lines each alternative allocator runs
    state_entries: int = 1_000_000  # SKU x node entries the state-cost benchmark builds
