"""The engine's side of Redis: fence a batch's SKUs and read their checkout holds, then write
the read model (availability and max_line_qty per channel, node ATP, hold mirrors, checkout
outcomes) and the heartbeat.

One pipeline before a batch and one after, never a round trip per event. Redis being down
never stops the engine: calls are skipped (with a short back-off) and, once Redis answers
again, the whole read model is written afresh.
"""

from __future__ import annotations

import time

import msgspec
import redis

from stockflow.state.checkout import CheckoutHold
from stockflow.state.read_model import SkuView
from stockflow.state.work import skus_in

from .redis_keys import Keys

_ENCODE = msgspec.json.Encoder().encode


class ReadModelStore:
    def __init__(self, client: redis.Redis, prefix: str = "sf", stale_after_s: float = 5.0,
                 fence_ms: int = 2000, retry_after_s: float = 1.0, on_error=None):
        self.client = client
        self.keys = Keys(prefix)
        self.stale_after_ms = int(stale_after_s * 1000)
        self.fence_ms = fence_ms  # a fence outlives a crashed engine by this much at most
        self.retry_after_s = retry_after_s
        self.on_error = on_error  # told of every failed round trip (metrics)
        self.outages = 0  # failed round trips: after one, ledgers rewrite their whole read model
        self._down_until = 0.0

    # -- before a batch ----------------------------------------------------------------

    def begin(self, items: list) -> dict[str, list[CheckoutHold]] | None:
        """Fence the batch's SKUs; their live checkout holds, or None if Redis is down."""
        skus = skus_in(items)
        if not skus or not self._up():
            return None if skus else {}
        pipe = self.client.pipeline(transaction=False)
        for sku in skus:
            keys = self.keys.begin(sku)
            pipe.fcall("stockflow_begin", len(keys), *keys, self.fence_ms)
        replies = self._run(pipe)
        if replies is None:
            return None
        live = {}
        for sku, flat in zip(skus, replies):
            live[sku] = [
                CheckoutHold(_text(flat[i]), _text(flat[i + 1]), int(flat[i + 2]), int(flat[i + 3]))
                for i in range(0, len(flat), 4)
            ]
        return live

    # -- after a batch -----------------------------------------------------------------

    def publish(self, sku_views: list[SkuView]) -> bool:
        """Write the views and the heartbeat in one pipeline; False if Redis did not take it."""
        if not self._up():
            return False
        pipe = self.client.pipeline(transaction=False)
        for view in sku_views:
            sku = view.sku
            keys = self.keys.publish(sku)
            body = _ENCODE({"c": view.channels, "l": view.max_line_qty, "n": view.nodes,
                            "k": view.checkouts})
            pipe.fcall("stockflow_publish", len(keys), *keys, body)
            for order_line, (parts, ttl_ms) in view.holds.items():
                pipe.set(self.keys.hold(sku, order_line), _ENCODE(parts), px=ttl_ms)
            if view.released:
                pipe.delete(*(self.keys.hold(sku, ol) for ol in view.released))
        self._beat_into(pipe)
        return self._run(pipe) is not None

    def beat(self) -> None:
        """The engine is alive: reservations may trust the published picture a while longer."""
        if self._up():
            pipe = self.client.pipeline(transaction=False)
            self._beat_into(pipe)
            self._run(pipe)

    # -- internals ---------------------------------------------------------------------

    def _beat_into(self, pipe) -> None:
        pipe.set(self.keys.heartbeat, int(time.time() * 1000) + self.stale_after_ms)

    def _up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _run(self, pipe):
        try:
            return pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            self.outages += 1
            if self.on_error is not None:
                self.on_error()
            self._down_until = time.monotonic() + self.retry_after_s
            return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
