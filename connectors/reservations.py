"""The reservation API for checkouts: a thin client over the `stockflow_*` Redis Functions.

Any language can call the same functions with FCALL; this wraps them for Python and turns
their error codes into exceptions.
"""

from __future__ import annotations

import time
from importlib.resources import files

import msgspec
import redis

from .redis_connect import is_cluster
from .redis_keys import Keys

LIBRARY = files("stockflow.connectors").joinpath("reservations.lua").read_text()


class ReservationRefused(Exception):
    """`code` is STALE (engine heartbeat too old), BUSY, SHORT (not enough), LINE (more than
    one order line of a channel that does not split lines can be promised) or BADARG."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class Hold(msgspec.Struct, frozen=True):
    hold_id: str
    sku: str
    expires_ms: int


def install(client) -> list[str]:
    """Load (or replace) the function library on the server, or on every primary of a Redis
    Cluster (Functions live per node; replicas copy their primary's); what `stockflow redis
    install` runs. Returns the nodes loaded (host:port)."""
    if not is_cluster(client):
        client.function_load(LIBRARY, replace=True)
        where = client.get_connection_kwargs()
        return [where.get("path") or f"{where.get('host', 'localhost')}:{where.get('port', 6379)}"]
    loaded = []
    for node in client.get_primaries():
        client.get_redis_connection(node).function_load(LIBRARY, replace=True)
        loaded.append(node.name)
    return loaded


class Reservations:
    """Checkout holds through the engine's Redis: `reserve`, `release`, and what a
    reservation would be granted now (`available`, `max_line_qty`)."""

    def __init__(self, client, prefix: str = "sf", busy_wait_s: float = 1.0):
        """`client`: `redis.Redis`, or `RedisCluster` (then the keys take the cluster layout,
        see redis_keys.py); `prefix`: the engine's `[redis] prefix`; `busy_wait_s`: how long
        `reserve` retries while the engine fences the SKU for a batch before raising BUSY."""
        self.client = client
        self.keys = Keys(prefix, cluster=is_cluster(client))
        self.busy_wait_s = busy_wait_s  # how long to retry while the engine applies a batch

    def reserve(self, sku: str, channel: str, qty: int, ttl_ms: int, hold_id: str) -> Hold:
        """Hold `qty` units of `sku` for `channel` for `ttl_ms`, or raise ReservationRefused."""
        keys = self.keys.reserve(sku)
        give_up = time.monotonic() + self.busy_wait_s
        while True:
            try:
                _, held_id, expires = self.client.fcall(
                    "stockflow_reserve", len(keys), *keys, channel, qty, ttl_ms, hold_id, sku
                )
                return Hold(_text(held_id), sku, int(expires))
            except redis.ResponseError as exc:
                code, _, message = str(exc).partition(" ")
                code = code.removeprefix("STOCKFLOW_")
                if code == "BUSY" and time.monotonic() < give_up:
                    time.sleep(0.001)
                    continue
                raise ReservationRefused(code, message) from None

    def release(self, sku: str, hold_id: str) -> bool:
        keys = self.keys.release(sku)
        return bool(self.client.fcall("stockflow_release", len(keys), *keys, hold_id, sku))

    def available(self, sku: str, channel: str) -> int:
        """What a reservation for the channel could be granted now: the availability the
        engine last published, less the checkout holds it has not taken in yet."""
        return self._net(self.keys.avail(sku), sku, channel)

    def max_line_qty(self, sku: str, channel: str) -> int:
        """The most one order line of the channel can be granted now: as last published, less
        the checkout holds not taken in yet."""
        return self._net(self.keys.max_line(sku), sku, channel)

    def _net(self, key: str, sku: str, channel: str) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(key, channel)
        pipe.get(self.keys.pending(sku))
        value, pending = pipe.execute()
        return max(0, int(value or 0) - int(pending or 0))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
