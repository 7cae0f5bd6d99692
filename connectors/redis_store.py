"""The engine's side of Redis: fence a batch's SKUs and read their checkout holds, then write
the read model (availability and max_line_qty per channel, node ATP and positions, hold
mirrors, checkout outcomes) and the heartbeat.

One pipeline before a batch and one after, never a round trip per event. Redis being down
never stops the engine: calls are skipped (with a short back-off) and, once Redis answers
again, the whole read model is written afresh.

Redis may also come back *empty* (restarted without its data, or flushed): each engine
process keeps a mark key in Redis and looks for it with every heartbeat; a missing mark, or a
function Redis no longer knows, means the read model is gone. The store then loads the
functions again, has every bucket rewrite its whole read model, and writes no heartbeat until
they all have, so reservations are refused as STALE (never granted against a half-written
picture) for that moment. An error that waiting cannot fix (a wrong type, MOVED, CROSSSLOT, no
permission) is not an outage: it stops the engine with one line.
"""

from __future__ import annotations

import secrets
import time

import msgspec
import redis

from stockflow.state.checkout import CheckoutHold
from stockflow.state.read_model import SkuView
from stockflow.state.work import skus_in

from .redis_keys import Keys
from .reservations import install

_ENCODE = msgspec.json.Encoder().encode
_ENCODE_POSITION = msgspec.msgpack.Encoder().encode  # array-like: ~20 bytes a node

MARK_TTL_MS = 600_000  # a mark outlives any pause of a live engine; then it is renewed


class RedisRefused(RuntimeError):
    """Redis answered with an error that retrying cannot fix: the engine stops, saying it."""


def _functions_missing(exc: redis.ResponseError) -> bool:
    text = str(exc)
    return "Function not found" in text or text.startswith("NOSCRIPT")


def _transient(exc: redis.ResponseError) -> bool:
    """Errors of a Redis that is starting, failing over or busy: an outage, not a mistake."""
    return str(exc).startswith(("LOADING", "READONLY", "BUSY ", "MASTERDOWN", "TRYAGAIN"))


class ReadModelStore:
    def __init__(self, client: redis.Redis, prefix: str = "sf", stale_after_s: float = 5.0,
                 fence_ms: int = 2000, retry_after_s: float = 1.0, on_error=None):
        self.client = client
        self.keys = Keys(prefix)
        self.stale_after_ms = int(stale_after_s * 1000)
        self.fence_ms = fence_ms  # a fence outlives a crashed engine by this much at most
        self.retry_after_s = retry_after_s
        self.on_error = on_error  # told of every failed round trip (metrics)
        # Failed round trips and losses: after either, ledgers rewrite their whole read model.
        self.outages = 0
        self.losses = 0  # times Redis was found empty
        self._mark = self.keys.mark(secrets.token_hex(8))  # this process's sign in Redis
        self._whole_at: dict[int, int] = {}  # bucket -> the outage count it was last whole at
        self._down_until = 0.0
        self._last_beat = float("-inf")

    def start(self) -> None:
        """Load the functions and set this process's mark; raises if Redis cannot be reached."""
        install(self.client)
        self.client.set(self._mark, 1, px=MARK_TTL_MS)

    def whole(self, bucket: int, outages: int) -> None:
        """`bucket` has written its whole read model since outage number `outages`."""
        self._whole_at[bucket] = outages

    @property
    def rebuilding(self) -> bool:
        """Some bucket of this process has not rewritten its read model since the last
        outage or loss."""
        return any(at != self.outages for at in self._whole_at.values())

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
            positions = [part for node, pos in view.positions.items()
                         for part in (node, _ENCODE_POSITION(pos))]
            pipe.fcall("stockflow_publish", len(keys), *keys, body, *positions)
            for order_line, (parts, ttl_ms) in view.holds.items():
                pipe.set(self.keys.hold(sku, order_line), _ENCODE(parts), px=ttl_ms)
            if view.released:
                pipe.delete(*(self.keys.hold(sku, ol) for ol in view.released))
        if not self.rebuilding:
            self._beat_into(pipe)
        return self._run(pipe) is not None

    def beat(self, at_most_every_s: float = 0.0) -> None:
        """Every second: is Redis still the one we wrote to? If so, and the read model is
        whole, reservations may trust it a while longer. (Every bucket's timer calls it: the
        process beats once per `at_most_every_s`.)"""
        now = time.monotonic()
        if not self._up() or now - self._last_beat < at_most_every_s:
            return
        self._last_beat = now
        found = self._run(self.client.pipeline(transaction=False).get(self._mark))
        if found is None:
            return
        if found[0] is None:
            self._lost()
            return
        if self.rebuilding:
            return  # stale until every bucket has rewritten what Redis lost
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self._mark, 1, px=MARK_TTL_MS)
        self._beat_into(pipe)
        self._run(pipe)

    # -- internals ---------------------------------------------------------------------

    def _beat_into(self, pipe) -> None:
        pipe.set(self.keys.heartbeat, int(time.time() * 1000) + self.stale_after_ms)

    def _lost(self) -> None:
        """Redis came back empty: functions again, and every bucket rewrites its read model."""
        self.losses += 1
        self.outages += 1
        try:
            self.start()
        except (redis.ConnectionError, redis.TimeoutError):
            self._away()

    def _up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _run(self, pipe):
        try:
            return pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            self._away()
        except redis.ResponseError as exc:
            if _functions_missing(exc):
                self._lost()
            elif _transient(exc):
                self._away()
            else:
                raise RedisRefused(f"Redis refused the read model: {exc}") from None
        return None

    def _away(self) -> None:
        self.outages += 1
        if self.on_error is not None:
            self.on_error()
        self._down_until = time.monotonic() + self.retry_after_s


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
