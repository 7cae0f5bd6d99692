"""The router: it sees every event, in the merged order the aligner gives (`alignment.py`).

It keeps what needs the whole input's view, and hands each ledger bucket its share:
- the engine's clock (highest event time seen, `clock.tick` included) and each event's
  position in the merged input; an event that would move it far ahead on its own word is
  held back until the next event confirms its time, else refused (`clock_guard.py`);
- true repeats (same `event_id` and content, or an `order.created` resent with the same
  lines) stop here; an id reused on other content, or an order resent with other lines, is
  refused (a dead letter `event_id_reused` / `order_conflict`);
- which SKUs an order touches, so `order.paid` / `order.cancelled` reach the right buckets
  (of an order it does not know, they are refused: a dead letter `unknown_order`),
  and (for an order of several SKUs) which SKU each line is. A shipment or return of a known
  order that names a SKU the order does not have, or a line of it with another line's SKU, is
  refused (a dead letter): sent by its SKU, it would reach a bucket that never saw the line,
  which would call it shipped or returned while the line's own bucket holds it;
- hold deadlines: when the clock passes one, the order's buckets get an `Expire`;
- inbound ETAs: when the clock brings one within the ATP horizon, or within the horizon a
  channel's supply policy gives its kind, its bucket gets an `InboundDue`, so availability
  and backorders move with time and not only with events;
- sweeps: each time the clock crosses a multiple of `sweep_interval_s`, every bucket gets a
  `Sweep`, so what time alone changes (a late transfer, a new day's protection and
  judgments) moves with the clock and not only with the SKU's next event (`sweep.py`);
- master data (nodes, channels) goes to every bucket, so each can source on its own;
- so do approvals and rejections of quarantined snapshots, and `transfer.cancelled`: they
  name only an event or command id, and are rare, so every bucket is asked and the one
  holding it acts;
- malformed messages become dead letters.

What it knows of an order (its SKUs, its lines' SKUs, its hold deadline) it forgets once the
order leaves the retention window. A shipment or return of an order it does not know (never
seen, or forgotten) goes on to the SKU it names, as before: the WMS may ship or take back what
the engine never sold.

Because one router feeds every bucket through one ordered channel per worker, each bucket sees
its events in merged input order however many workers run: the outputs do not depend on them,
and the clock is one clock, moved only by recorded events, so holds expire at the same place
in the input live, in replay and after a restart.
"""

from __future__ import annotations

import heapq
from collections import deque
from datetime import datetime, timezone

import msgspec

from .config import EngineConfig
from .clock_guard import ClockGuard, implausible
from .dedup import NEW, REUSED, RecentIds, digest
from .events import (
    Channel,
    ChannelUpserted,
    CheckoutTaken,
    ClockTick,
    Malformed,
    NodeUpserted,
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderReturned,
    ShipmentConfirmed,
    StockSnapshotApproved,
    StockSnapshotRejected,
    SupplyInbound,
    TransferCancelled,
    InputEvent,
    epoch_ms,
)
from .holds import HoldDeadlines, hold_deadline
from .outputs import DeadLetter
from .sweep import sweep_at
from .work import (
    CheckoutDue,
    Expire,
    Forget,
    InboundDue,
    Work,
    bucket_of,
    due_position,
    intake_work,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Router:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.buckets = config.buckets
        self.clock_ms = 0
        self.clock_ts = EPOCH
        self.seq = 0
        self.recent = RecentIds(int(config.dedup_window_s * 1000), config.dedup_max_ids)
        self.orders: dict[str, tuple[str, ...]] = {}  # order_id -> its SKUs
        # order_id -> line_id -> its SKU, for orders of several SKUs (of one, `orders` says)
        self.line_skus: dict[str, dict[str, str]] = {}
        self.order_ages: deque[tuple[int, str]] = deque()  # (created clock, order_id)
        self.deadlines = HoldDeadlines()
        self.channels: dict[str, Channel] = {}  # for their hold life
        self.duplicates = 0
        self.orphans = 0  # payments or cancels for orders not known: refused
        self.guard = ClockGuard(config.max_clock_jump_s, config.clock_jump_alert_s)
        # order_id -> a digest of its lines, to tell a resend from a conflicting one
        self.order_lines: dict[str, int] = {}
        self.refused = 0  # shipments and returns naming a SKU their order or line does not have
        self.etas: list[tuple[int, str]] = []  # heap of (inbound ETA, sku) beyond the horizon
        self._retention_ms = int(config.order_retention_s * 1000)
        self._horizon_ms = int(config.inbound_horizon_s * 1000)
        self._bucket_cache: dict[str, int] = {}
        # heap of (when an inbound ETA comes within a channel policy's horizon, sku)
        self.policy_due: list[tuple[int, str]] = []
        self._policy_horizons: dict[str, set[int]] | None = None  # kind -> horizons (ms)
        self.swept_ms = 0  # the last sweep boundary the buckets were sent (sweep.py)
        self._sweep_ms = config.sweep_interval_s * 1000
        self._rewake: deque[tuple[int, str]] = deque()  # see `rewake`; not kept in snapshots

    # A snapshot is msgpack of `_RouterState`, several times faster than pickling the
    # objects: it is taken at every epoch, and the order index grows with retention.
    def __getstate__(self) -> bytes:
        return _ENCODE_STATE(_RouterState(
            config=self.config, clock_ms=self.clock_ms, clock_ts=self.clock_ts, seq=self.seq,
            recent=self.recent.snapshot(), orders=self.orders, order_ages=list(self.order_ages),
            deadlines=self.deadlines.snapshot(), channels=self.channels,
            duplicates=self.duplicates, orphans=self.orphans, etas=self.etas,
            policy_due=self.policy_due, line_skus=self.line_skus, refused=self.refused,
            swept_ms=self.swept_ms, order_lines=self.order_lines,
            held=None if self.guard.held is None else _ENCODE_EVENT(self.guard.held),
            held_seq=self.guard.held_seq,
        ))

    def __setstate__(self, data: bytes) -> None:
        state = _DECODE_STATE(data)
        self.__init__(state.config)
        self.clock_ms, self.clock_ts, self.seq = state.clock_ms, state.clock_ts, state.seq
        self.recent.restore(*state.recent)
        self.orders = {order_id: tuple(skus) for order_id, skus in state.orders.items()}
        self.order_ages = deque((age, order_id) for age, order_id in state.order_ages)
        self.deadlines = HoldDeadlines.restore(*state.deadlines)
        self.channels = state.channels
        self.duplicates, self.orphans = state.duplicates, state.orphans
        self.etas = [(eta, sku) for eta, sku in state.etas]
        self.policy_due = [(at, sku) for at, sku in state.policy_due]
        self.line_skus, self.refused = state.line_skus, state.refused
        self.swept_ms = state.swept_ms
        self.order_lines = state.order_lines
        if state.held is not None:
            self.guard.hold(_DECODE_EVENT(state.held), state.held_seq)

    def bucket(self, sku: str) -> int:
        b = self._bucket_cache.get(sku)
        if b is None:
            b = self._bucket_cache[sku] = bucket_of(sku, self.buckets)
        return b

    def route(self, items: list) -> tuple[dict[int, list[Work]], list]:
        """Route decoded events (and `Malformed` messages) in input order.

        Returns the work for each bucket, in order, and the dead letters, with the router's
        own alerts (`clock_jump`) among them.
        """
        work: dict[int, list[Work]] = {}
        dead: list = []
        guard = self.guard
        for item in items:
            t = type(item)
            if t is CheckoutTaken:  # the engine's own journal: it stands between messages
                self._taken(item, work)
                continue
            if self._rewake:
                self._wake_again(work)
            self.seq += 1  # every message has its place, whatever becomes of it
            if t is Malformed:
                dead.append(DeadLetter(
                    ts=self.clock_ts, cause=item.event_id or item.source,
                    raw=item.raw, error=item.error, source=item.source, reason=item.reason,
                ))
                continue
            ts_ms = epoch_ms(item.ts)
            if guard.held is not None:
                self._judge_held(ts_ms, item, work, dead)
            if guard.in_doubt(ts_ms, self.clock_ms):
                guard.hold(item, self.seq)  # the next event says whether to believe it
                continue
            self._apply(item, t, ts_ms, work, dead)
        if self._rewake:
            self._wake_again(work)
        return work, dead

    def end(self) -> list:
        """The input ended (a file, a drain): an event still held back for its time is
        refused, since nothing will confirm it. Returns its dead letter, if any."""
        if self.guard.held is None:
            return []
        ev, _ = self.guard.take()
        return [implausible(ev, self.clock_ts, self.guard.max_jump_ms)]

    def _judge_held(self, ts_ms: int, by, work, dead: list) -> None:
        """The event held back for its time meets the next one: applied at its own place if
        that confirms its time, else refused."""
        guard = self.guard
        confirmed = guard.confirmed_by(ts_ms)
        ev, seq = guard.take()
        if not confirmed:
            dead.append(implausible(ev, self.clock_ts, guard.max_jump_ms, by))
            return
        here, self.seq = self.seq, seq
        self._apply(ev, type(ev), epoch_ms(ev.ts), work, dead)
        self.seq = here

    def _apply(self, item, t, ts_ms: int, work, dead: list) -> None:
        """One event, past the clock guard: dedup, the clock, then its routing."""
        tick = t is ClockTick  # its id is unique by making: nothing to remember
        if not tick:
            found = self.recent.check(item.event_id, max(ts_ms, self.clock_ms), digest(item))
            if found != NEW:
                if found == REUSED:
                    dead.append(self._refusal(item, "event_id_reused",
                                              f"event id {item.event_id} was already used by "
                                              f"an event with other content"))
                else:
                    self.duplicates += 1
                return
        if ts_ms > self.clock_ms:
            alert = self.guard.jump_alert(item, self.clock_ms, ts_ms)
            if alert is not None:
                dead.append(alert)
            self.clock_ms, self.clock_ts = ts_ms, item.ts
            self._on_clock(item, work)
        if not tick:  # a tick moves the clock and nothing else
            self._route_event(item, work, dead)

    def wake(self, skus: list[str]) -> dict[int, list[Work]]:
        """Work that takes in the checkout holds of `skus` now, just after the last message
        routed (live mode: the reservation store says they changed), and of the SKUs a run
        before this one took in there (`rewake`)."""
        work: dict[int, list[Work]] = {}
        if self._rewake:
            self._wake_again(work)
        for sku in skus:
            self._due(work, sku)
        return work

    def rewake(self, woken: list[tuple[int, str]]) -> None:
        """After a restart: the places (position, sku) where the run before this one took in
        the holds of SKUs with no other traffic; `route` does so again at each."""
        self._rewake = deque(sorted(woken))

    def _wake_again(self, work) -> None:
        here, rewake = due_position(self.seq), self._rewake
        while rewake and rewake[0][0] <= here:
            at, sku = rewake.popleft()
            if at == here:
                self._due(work, sku)

    def _due(self, work, sku: str) -> None:
        due = CheckoutDue(sku, self.clock_ts)
        self._send(work, self.bucket(sku), (self.clock_ms, self.seq, due, due, None))

    # -- internals ----------------------------------------------------------------------

    def _taken(self, ev: CheckoutTaken, work) -> None:
        """A journalled checkout intake (a replay of recorded topics): to its SKU's bucket at
        the place and clock it names. A repeat of one is dropped here like any duplicate."""
        if self.recent.seen(ev.event_id, self.clock_ms):
            self.duplicates += 1
            return
        item = intake_work(ev)
        self._send(work, self.bucket(ev.sku), item)

    def _send(self, work: dict[int, list[Work]], bucket: int, item: Work) -> None:
        lst = work.get(bucket)
        if lst is None:
            work[bucket] = [item]
        else:
            lst.append(item)

    def _to_order_buckets(self, work, cause, payload, skus: tuple[str, ...]) -> None:
        by_bucket: dict[int, list[str]] = {}
        for sku in skus:
            by_bucket.setdefault(self.bucket(sku), []).append(sku)
        for b, bucket_skus in by_bucket.items():
            self._send(work, b, (self.clock_ms, self.seq, cause, payload, tuple(bucket_skus)))

    def _to_every_bucket(self, work, cause, payload) -> None:
        item = (self.clock_ms, self.seq, cause, payload, None)
        for b in range(self.buckets):
            self._send(work, b, item)

    def _on_clock(self, cause, work) -> None:
        """The clock moved: expire holds that are due, forget orders past retention, bring
        inbound supply within the horizon; past a sweep boundary, sweep every bucket."""
        for order_id in self.deadlines.due(self.clock_ms):
            skus = self.orders.get(order_id)
            if skus:
                self._to_order_buckets(work, cause, Expire(order_id), skus)
        horizon = self.clock_ms - self._retention_ms
        ages = self.order_ages
        while ages and ages[0][0] < horizon:
            _, order_id = ages.popleft()
            skus = self.orders.pop(order_id, None)
            self.line_skus.pop(order_id, None)
            self.order_lines.pop(order_id, None)
            self.deadlines.drop(order_id)
            if skus:
                self._to_order_buckets(work, cause, Forget(order_id), skus)
        etas, until = self.etas, self.clock_ms + self._horizon_ms
        while etas and etas[0][0] <= until:
            sku = heapq.heappop(etas)[1]
            item = (self.clock_ms, self.seq, cause, InboundDue(sku), None)
            self._send(work, self.bucket(sku), item)
        due, sent = self.policy_due, set()
        while due and due[0][0] <= self.clock_ms:
            sku = heapq.heappop(due)[1]
            if sku not in sent:
                sent.add(sku)
                self._send(work, self.bucket(sku),
                           (self.clock_ms, self.seq, cause, InboundDue(sku), None))
        self.swept_ms, sweep = sweep_at(self.swept_ms, self.clock_ms, self._sweep_ms)
        if sweep is not None:
            self._to_every_bucket(work, cause, sweep)

    def _horizons_of(self, kind: str) -> set[int]:
        """The horizons (ms) channels' supply policies give `kind`, besides the engine's."""
        if self._policy_horizons is None:
            horizons: dict[str, set[int]] = {}
            for channel in self.channels.values():
                for k, rule in (channel.supply or {}).items():
                    if rule.horizon_s is not None and rule.share > 0:
                        horizons.setdefault(k, set()).add(int(rule.horizon_s * 1000))
            for found in horizons.values():
                found.discard(self._horizon_ms)
            self._policy_horizons = horizons
        return self._policy_horizons.get(kind, set())

    def _route_event(self, ev, work, dead: list[DeadLetter]) -> None:
        t = type(ev)
        if t is OrderCreated:
            self._created(ev, work, dead)
        elif t is OrderPaid or t is OrderCancelled:
            skus = self.orders.get(ev.order_id)
            if skus is None:
                self.orphans += 1
                dead.append(self._refusal(ev, "unknown_order",
                                          f"order {ev.order_id} is not known: never created, "
                                          f"refused, or past retention"))
                return
            if t is OrderPaid or ev.line_ids is None:
                self.deadlines.drop(ev.order_id)
            self._to_order_buckets(work, ev, ev, skus)
        elif t is NodeUpserted or t is ChannelUpserted:
            if t is ChannelUpserted:
                self.channels[ev.channel.id] = ev.channel
                self._policy_horizons = None
            self._to_every_bucket(work, ev, ev)
        elif t is StockSnapshotApproved or t is StockSnapshotRejected or t is TransferCancelled:
            self._to_every_bucket(work, ev, ev)  # only an id: its bucket is not known
        else:  # every other event names its SKU
            if (t is ShipmentConfirmed or t is OrderReturned) and self._refused(ev, dead):
                return
            if t is SupplyInbound and ev.qty:
                eta_ms = epoch_ms(ev.eta)
                if eta_ms > self.clock_ms + self._horizon_ms:
                    heapq.heappush(self.etas, (eta_ms, ev.sku))
                for horizon_ms in self._horizons_of(ev.kind):
                    if eta_ms - horizon_ms > self.clock_ms:
                        heapq.heappush(self.policy_due, (eta_ms - horizon_ms, ev.sku))
            self._send(work, self.bucket(ev.sku), (self.clock_ms, self.seq, ev, ev, None))

    def _created(self, ev: OrderCreated, work, dead: list) -> None:
        lines = digest(ev.lines)
        if ev.order_id in self.orders:
            known = self.order_lines.get(ev.order_id)
            if known is None or known == lines:
                self.duplicates += 1  # a channel resending the order under a new event_id
            else:
                dead.append(self._refusal(ev, "order_conflict",
                                          f"order {ev.order_id} was created with other lines"))
            return
        self.order_lines[ev.order_id] = lines
        skus = tuple(dict.fromkeys(line.sku for line in ev.lines))
        self.orders[ev.order_id] = skus
        if len(skus) > 1:
            self.line_skus[ev.order_id] = {line.line_id: line.sku for line in ev.lines}
        self.order_ages.append((self.clock_ms, ev.order_id))
        self._to_order_buckets(work, ev, ev, skus)
        channel = self.channels.get(ev.channel)
        if not ev.paid and channel is not None:
            self.deadlines.schedule(ev.order_id, hold_deadline(self.clock_ms, channel))

    def _refused(self, ev: ShipmentConfirmed | OrderReturned, dead: list) -> bool:
        """Whether the event names a SKU its known order does not have, or a known line of it
        with another SKU; then it is refused: a dead letter, and no bucket sees it."""
        skus = self.orders.get(ev.order_id)
        if skus is None:
            return False  # an order never seen, or forgotten: shipped or returned outside
        if ev.sku not in skus:
            reason = "sku_not_in_order"
            error = f"{ev.order_id} has no line of {ev.sku}, only of {', '.join(skus)}"
        else:
            lines = self.line_skus.get(ev.order_id)
            sku = lines.get(ev.line_id) if lines is not None else None
            if sku is None or sku == ev.sku:
                return False
            reason = "line_sku_mismatch"
            error = f"{ev.order_id}/{ev.line_id} is a line of {sku}, not of {ev.sku}"
        self.refused += 1
        dead.append(self._refusal(ev, reason, error))
        return True

    def _refusal(self, ev, reason: str, error: str) -> DeadLetter:
        """A well-formed event refused as contradicting what the engine knows: its content is
        kept, so it can be sent again once that changes."""
        return DeadLetter(ts=ev.ts, cause=ev.event_id, raw=_ENCODE_EVENT(ev).decode(),
                          error=error, source="engine", reason=reason)


class _RouterState(msgspec.Struct, array_like=True):
    config: EngineConfig
    clock_ms: int
    clock_ts: datetime
    seq: int
    # ids with their content's digest; ids alone (lists) in older snapshots
    recent: tuple[dict[str, int | None] | list[str], dict[str, int | None] | list[str],
                  int | None]
    orders: dict[str, list[str]]
    order_ages: list[tuple[int, str]]
    deadlines: tuple[list[tuple[int, str]], dict[str, int]]
    channels: dict[str, Channel]
    duplicates: int
    orphans: int
    etas: list[tuple[int, str]]
    policy_due: list[tuple[int, str]] = []
    line_skus: dict[str, dict[str, str]] = {}  # absent from snapshots of older versions
    refused: int = 0
    swept_ms: int = 0  # absent from older snapshots: their first clock move sweeps
    order_lines: dict[str, int] = {}  # absent from older snapshots: resends are not compared
    held: bytes | None = None  # the event the clock guard holds back (JSON), if any
    held_seq: int = 0


_ENCODE_EVENT = msgspec.json.Encoder().encode
_DECODE_EVENT = msgspec.json.Decoder(InputEvent).decode
_ENCODE_STATE = msgspec.msgpack.Encoder().encode
_DECODE_STATE = msgspec.msgpack.Decoder(_RouterState).decode
