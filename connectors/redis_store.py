"""The engine's side of Redis: fence a batch's SKUs and read their checkout holds, then write
the read model (availability and max_line_qty per channel, node ATP and positions, hold
mirrors, checkout outcomes) and the heartbeat.

One pipeline before a batch and one after (for every bucket of the worker's batch at once,
`dataflows/read_model_steps.py`), never a round trip per event or per bucket. Redis being down
never stops the engine: calls are skipped (with a short back-off) and, once Redis answers
again, the whole read model is written afresh.

Redis may also come back *empty* (restarted without its data, or flushed): each engine
process keeps a mark key in Redis and looks for it with every heartbeat; a missing mark, or a
function Redis no longer knows, means the read model is gone. The store then loads the
functions again, has every bucket rewrite its whole read model, and writes no heartbeat until
they all have, so reservations are refused as STALE (never granted against a half-written
picture) for that moment. An error that waiting cannot fix (a wrong type, MOVED, CROSSSLOT, no
permission, functions still missing right after loading them) is not an outage: it stops the
engine with one line.

On Redis Cluster (a `RedisCluster` client) the same pipelines are split per node by the
client; the functions are loaded on every primary, and the heartbeat and marks are kept per
slot group (redis_keys.py), so one node that restarts empty is noticed like a whole Redis.
"""

from __future__ import annotations

import logging
import secrets
import time

import msgspec
import redis
from redis.exceptions import RedisClusterException, SlotNotCoveredError

from stockflow.state.events import CheckoutHold, CheckoutTaken
from stockflow.state.read_model import SkuView
from stockflow.state.supply_policy import datetime_of
from stockflow.state.work import Intake

from .redis_connect import RedisRefused, is_cluster
from .redis_keys import Keys
from .reservations import install

__all__ = ["ReadModelStore", "RedisRefused"]

_ENCODE = msgspec.json.Encoder().encode
_ENCODE_POSITION = msgspec.msgpack.Encoder().encode  # array-like: ~20 bytes a node

log = logging.getLogger(__name__)

_NOTHING_WRITTEN: tuple[dict, dict] = ({}, {})
_MISSING = object()


def _moved(now: dict, before: dict) -> dict:
    """The entries of `now` that `before` does not have as they are."""
    return {key: value for key, value in now.items() if before.get(key, _MISSING) != value}

MARK_TTL_MS = 600_000  # a mark outlives any pause of a live engine; then it is renewed
# The intake log keeps what a restart could ask for: what the last minutes took in.
INTAKE_LOG_KEEP_MS = 600_000
DUE_PER_CALL = 1000  # SKUs taken from a due set at once


def _said(exc: redis.ResponseError) -> str:
    """The error as Redis said it: redis-py strips the code (MOVED, READONLY...) off the
    errors it has a class for and keeps it in `status_code`."""
    code = getattr(exc, "status_code", None)
    return f"{code} {exc}" if code and code != "ERR" else str(exc)


def _functions_missing(exc: redis.ResponseError) -> bool:
    text = _said(exc)
    return "Function not found" in text or text.startswith("NOSCRIPT")


def _transient(exc: redis.ResponseError) -> bool:
    """Errors of a Redis that is starting, failing over or busy (a cluster without a primary
    for a slot, for now): an outage, not a mistake."""
    return _said(exc).startswith(("LOADING", "READONLY", "BUSY ", "MASTERDOWN", "TRYAGAIN",
                                  "CLUSTERDOWN"))


def _unreachable(exc: RedisClusterException) -> bool:
    """The cluster client's way of saying no node answers, or a slot has no node for now."""
    return isinstance(exc, SlotNotCoveredError) or "cannot be connected" in str(exc)


def _refused(exc: Exception) -> RedisRefused:
    said = _said(exc) if isinstance(exc, redis.ResponseError) else str(exc)
    text = said.splitlines()[0] if said else type(exc).__name__
    if text.startswith("MOVED"):
        text += " (Redis is a cluster: set [redis] cluster = true)"
    return RedisRefused(f"Redis refused the read model: {text}")


class ReadModelStore:
    def __init__(self, client, prefix: str = "sf", stale_after_s: float = 5.0,
                 fence_ms: int = 2000, retry_after_s: float = 1.0, on_error=None):
        self.client = client  # redis.Redis, or RedisCluster: the key layout follows it
        self.keys = Keys(prefix, cluster=is_cluster(client))
        self.stale_after_ms = int(stale_after_s * 1000)
        self.fence_ms = fence_ms  # a fence outlives a crashed engine by this much at most
        self.retry_after_s = retry_after_s
        self.on_error = on_error  # told of every failed round trip (metrics)
        # Failed round trips and losses: after either, ledgers rewrite their whole read model.
        self.outages = 0
        self.losses = 0  # times Redis was found empty
        self._marks = self.keys.marks(secrets.token_hex(8))  # this process's signs in Redis
        self._whole_at: dict[int, int] = {}  # bucket -> the outage count it was last whole at
        self._down_until = 0.0
        self._away_since: float | None = None  # when Redis stopped answering (for the logs)
        self._rewriting = False  # a rewrite of the read model is under way (for the logs)
        self._last_beat = float("-inf")
        self._reloaded = False  # functions were missing and loaded again: must answer now
        # sku -> (node -> ATP, node -> position) as last written, while `outages` is what it
        # was then (see `write`)
        self._nodes_written: dict[str, tuple[dict[str, int], dict[str, bytes]]] = {}
        self._nodes_written_at = 0
        # The furthest position a run before this one fenced: up to it, checkout holds are
        # taken in as that run took them (the intake log), never afresh, so the rerun of what
        # it already published decides as it did (see `begin`). Read once, at start.
        self.redo_until = -1

    def start(self) -> None:
        """Load the functions (on every primary of a cluster), set this process's marks and
        read how far the run before this one got; raises if Redis cannot be reached."""
        install(self.client)
        pipe = self.client.pipeline(transaction=False)
        self._mark_into(pipe)
        pipe.get(self.keys.intake_at)
        *_, reached = pipe.execute()
        self.redo_until = int(reached) if reached is not None else -1

    def whole(self, bucket: int, outages: int) -> None:
        """`bucket` has written its whole read model since outage number `outages`."""
        self._whole_at[bucket] = outages
        if self._rewriting and not self.rebuilding:
            self._rewriting = False
            log.info("redis_read_model_rewritten", extra={"buckets": len(self._whole_at)})

    def is_whole(self, bucket: int) -> bool:
        return self._whole_at.get(bucket) == self.outages

    @property
    def rebuilding(self) -> bool:
        """Some bucket of this process has not rewritten its read model since the last
        outage or loss."""
        return any(at != self.outages for at in self._whole_at.values())

    # -- before a batch ----------------------------------------------------------------

    def begin(self, intakes: dict[str, Intake], reached: int | None = None
              ) -> dict[str, list[CheckoutTaken]] | None:
        """Fence the SKUs and take in their checkout holds as `intakes` says; `reached`: the
        furthest position these batches go to, remembered for a restart. Returns what each
        SKU took in (intake log entries, as `CheckoutTaken`), or None if Redis is down."""
        if not intakes or not self._up():
            return None if intakes else {}
        pipe = self.client.pipeline(transaction=False)
        if reached is not None:
            pipe.fcall("stockflow_progress", 1, self.keys.intake_at, reached)
        for sku, intake in intakes.items():
            keys = self.keys.begin(sku)
            pipe.fcall("stockflow_begin", len(keys), *keys, self.fence_ms, sku,
                       _arg(intake.fresh_at), _arg(intake.redo_until), intake.clock_ms,
                       INTAKE_LOG_KEEP_MS)
        replies = self._run(pipe)
        if replies is None:
            return None
        if reached is not None:
            replies = replies[1:]
        return {sku: [_taken(sku, entry) for entry in entries]
                for sku, entries in zip(intakes, replies)}

    def woken(self, after: int) -> list[tuple[int, str]]:
        """(position, sku) of the intakes a run before this one made for SKUs with no other
        traffic, from `after` up to where it got (`redo_until`), in position order: a rerun
        makes them again there (`Router.rewake`)."""
        if after > self.redo_until:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys.wokens:
            pipe.zrangebyscore(key, after, self.redo_until)
        found = []
        for members in pipe.execute():
            for member in members:
                at, _, sku = _text(member).partition(":")
                found.append((int(at), sku))
        return sorted(found)

    def due(self) -> list[str]:
        """SKUs whose checkout holds changed (a grant, a release, an expiry) and are due to be
        taken in; each is handed out once."""
        if not self._up():
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys.dues:
            pipe.fcall("stockflow_due", 1, key, DUE_PER_CALL)
        replies = self._run(pipe)
        if replies is None:
            return []
        return [_text(sku) for skus in replies for sku in skus]

    # -- after a batch -----------------------------------------------------------------

    def write(self, sku_views: list[SkuView]) -> bool:
        """Write the views and the heartbeat in one pipeline; False if Redis did not take it."""
        if not self._up():
            return False
        # Node ATP and positions are for operators (reservations never read them), and a batch
        # moves few of a SKU's nodes: only those that moved since the last write are sent,
        # which spares most of its arguments and most of Redis's work on it. After any
        # failed write or loss (`outages` moved on) everything is sent again. What
        # reservations read (availability and max_line_qty per channel) is always sent whole.
        # (The memory: one small bytes object per SKU and node this process writes.)
        if self._nodes_written_at != self.outages:
            self._nodes_written, self._nodes_written_at = {}, self.outages
        written, nodes_now = self._nodes_written, {}
        pipe = self.client.pipeline(transaction=False)
        for view in sku_views:
            sku = view.sku
            keys = self.keys.publish(sku)
            atp_before, positions_before = written.get(sku, _NOTHING_WRITTEN)
            packed = {node: _ENCODE_POSITION(pos) for node, pos in view.positions.items()}
            nodes_now[sku] = (view.nodes, packed)
            body = _ENCODE({"c": view.channels, "l": view.max_line_qty,
                            "n": _moved(view.nodes, atp_before), "k": view.checkouts})
            positions = [part for node, position in _moved(packed, positions_before).items()
                         for part in (node, position)]
            pipe.fcall("stockflow_publish", len(keys), *keys, body, *positions)
            for order_line, (parts, ttl_ms) in view.holds.items():
                pipe.set(self.keys.hold(sku, order_line), _ENCODE(parts), px=ttl_ms)
            if view.released:  # one slot: a cluster pipeline takes it as one DEL too
                pipe.execute_command("DEL", *(self.keys.hold(sku, ol) for ol in view.released))
        if not self.rebuilding:
            self._beat_into(pipe, self.keys.heartbeats_of(v.sku for v in sku_views))
        if self._run(pipe) is None:
            return False
        written.update(nodes_now)
        return True

    def beat(self, at_most_every_s: float = 0.0) -> None:
        """Every second: is Redis still the one we wrote to? If so, and the read model is
        whole, reservations may trust it a while longer. (Every bucket's timer calls it: the
        process beats once per `at_most_every_s`.)"""
        now = time.monotonic()
        if not self._up() or now - self._last_beat < at_most_every_s:
            return
        self._last_beat = now
        pipe = self.client.pipeline(transaction=False)
        for mark in self._marks:
            pipe.get(mark)
        found = self._run(pipe)
        if found is None:
            return
        if any(mark is None for mark in found):
            self._lost()
            return
        if self.rebuilding:
            return  # stale until every bucket has rewritten what Redis lost
        pipe = self.client.pipeline(transaction=False)
        self._mark_into(pipe)
        self._beat_into(pipe, self.keys.heartbeats)
        self._run(pipe)

    # -- internals ---------------------------------------------------------------------

    def _beat_into(self, pipe, heartbeats) -> None:
        fresh_until = int(time.time() * 1000) + self.stale_after_ms
        for key in heartbeats:
            pipe.set(key, fresh_until)

    def _mark_into(self, pipe) -> None:
        for mark in self._marks:
            pipe.set(mark, 1, px=MARK_TTL_MS)

    def _lost(self) -> None:
        """Redis came back empty: functions again, and every bucket rewrites its read model."""
        self.losses += 1
        self.outages += 1
        self._rewriting = True
        log.warning("redis_found_empty", extra={
            "losses": self.losses, "next": "functions loaded again, read model rewritten; "
                                           "reservations refused as stale until then"})
        try:
            self.start()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._away(exc)
        except RedisClusterException as exc:
            if not _unreachable(exc):
                raise _refused(exc) from None
            self._away(exc)
        else:
            self._reloaded = True

    def _up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _run(self, pipe):
        asked = len(pipe) > 0  # an empty pipeline succeeds without asking Redis anything
        try:
            replies = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._away(exc)
        except redis.ResponseError as exc:
            if _functions_missing(exc):
                if self._reloaded:  # loaded on every primary a moment ago, and still missing
                    raise RedisRefused("Redis refused the read model: the stockflow functions "
                                       f"are missing right after loading them ({exc})") from None
                self._answered()
                self._lost()
            elif _transient(exc):
                self._away(exc)
            else:
                raise _refused(exc) from None
        except RedisClusterException as exc:  # the cluster client's own refusals (CROSSSLOT)
            if not _unreachable(exc):
                raise _refused(exc) from None
            self._away(exc)
        else:
            self._reloaded = False
            if asked:
                self._answered()
            return replies
        return None

    def _answered(self) -> None:
        if self._away_since is not None:
            log.info("redis_back", extra={"away_s": round(time.monotonic() - self._away_since, 1)})
            self._away_since = None

    def _away(self, exc: Exception | None = None) -> None:
        self.outages += 1
        if self.on_error is not None:
            self.on_error()
        now = time.monotonic()
        self._down_until = now + self.retry_after_s
        if self._away_since is None:  # one line per outage, not one per failed round trip
            self._away_since = now
            self._rewriting = True
            log.warning("redis_away", extra={
                "error": str(exc), "retry_every_s": self.retry_after_s,
                "next": "the engine goes on; the read model is rewritten once Redis answers"})


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _arg(position: int | None) -> int | str:
    return "" if position is None else position


def _taken(sku: str, entry) -> CheckoutTaken:
    """An intake log entry (see `begin` in reservations.lua) as the event it journals."""
    n, at, clock_ms, held, released, _ = _text(entry).split("\t")
    holds = []
    for hold in held.split("\x1e") if held else ():
        hold_id, channel, qty, expires_ms = hold.split("\x1f")
        holds.append(CheckoutHold(hold_id=hold_id, channel=channel, qty=int(qty),
                                  expires_ms=int(expires_ms)))
    return CheckoutTaken(event_id=f"intake:{sku}:{int(n)}", ts=datetime_of(int(clock_ms)),
                         sku=sku, at=int(at), n=int(n), holds=holds,
                         released=released.split("\x1e") if released else [])
