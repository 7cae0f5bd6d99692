"""The reservation API under load: `redis-benchmark` (a C client, so the client is not what
is measured) calling FCALL stockflow_reserve with random hold ids on one hot SKU, with 1, 16
and 64 concurrent connections."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from urllib.parse import urlparse

import redis

from stockflow.connectors.redis_keys import Keys
from stockflow.connectors.reservations import install


def run_reservations(url: str, clients: int, requests: int = 50_000) -> dict:
    tool = shutil.which("redis-benchmark")
    if tool is None:
        raise RuntimeError("redis-benchmark not found: apt-get install redis-tools")
    client = redis.Redis.from_url(url)
    install(client)
    keys = Keys(f"bench{time.time_ns() % 10**9}")
    sku = "HOT-1"
    client.hset(keys.avail(sku), "web", 10**12)
    client.hset(keys.max_line(sku), "web", 10**12)
    client.set(keys.heartbeat_of(sku), 10**15)  # fresh for the whole run
    where = urlparse(url)
    reserve_keys = keys.reserve(sku)
    cmd = [tool, "-h", where.hostname or "127.0.0.1", "-p", str(where.port or 6379),
           "-c", str(clients), "-n", str(requests), "-r", "1000000000",
           "FCALL", "stockflow_reserve", str(len(reserve_keys)), *reserve_keys, "web", "1",
           "60000", "hold:__rand_int__", sku]
    if where.password:
        cmd[1:1] = ["-a", where.password]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"throughput summary: ([\d.]+) requests per second", out).group(1))
    row = re.search(r"latency summary \(msec\):\s*\n\s*avg.*\n\s*([\d.\s]+)", out).group(1).split()
    avg, _min, p50, _p95, p99, _max = (float(x) for x in row[:6])
    granted = int(client.hget(keys.stats_of(sku), "granted") or 0)
    client.delete(*[keys.avail(sku), keys.max_line(sku), keys.checkouts(sku),
                    keys.checkout_expiry(sku), keys.pending(sku), keys.heartbeat_of(sku),
                    keys.stats_of(sku)])
    return {"system": "reservation-api", "clients": clients, "requests": requests,
            "granted": granted, "holds_per_s": round(rate), "p50_ms": p50, "p99_ms": p99,
            "avg_ms": avg}
