"""The ledger of one bucket of SKUs: applies routed events and returns their outputs.

Each SKU's book (positions, lines, backorders) is changed only here, one event at a time, in
the order the router sent them. After every event the SKU's consequences follow
(`_after_change`): shortages resolved, backorders filled, reorder points checked.
Availability is published once per batch.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from .availability import publish_changes
from .backorders import fill_backorders
from .book import SkuBook
from .checkout import reconcile, settle
from .config import EngineConfig
from .context import Ctx, SourcingObserver
from .emit import Emitter
from .events import (
    Channel,
    ChannelUpserted,
    CheckoutTaken,
    Node,
    NodeUpserted,
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderReturned,
    PolicyUpserted,
    ShipmentConfirmed,
    StockAdjusted,
    StockSnapshot,
    StockSnapshotApproved,
    StockSnapshotRejected,
    SupplyInbound,
    SupplyReceived,
    TransferCancelled,
    TransferShipped,
    epoch_ms,
)
from .demand import count_line
from .smart_replenishment import rule_of as smart_rule_of
from .smart_replenishment import announced, received, start_demand
from .holds import expire_line, hold_deadline, pay_line
from .lifecycle import cancel_line, forget_lines, return_line, ship_line
from .lines import RETURNED, SHIPPED, Line, unknown_line
from .master import Catalog
from .outputs import OutputEvent
from .placement import place_or_queue
from .promises import keep_promises
from .quarantine import GuardDecision, SnapshotGuarding
from .rebalancing import rule_of as rule_of_rebalancing
from .shortage import resolve_shortage
from .slow_movers import rule_of
from .sweep import Sweep, Sweeping
from .transfer_handling import TransferHandling
from .transfers import receive_transfer, terms_of
from .wos_memo import WosMemo
from .work import CheckoutDue, Expire, Forget, InboundDue, Work


class Ledger(SnapshotGuarding, TransferHandling, Sweeping):
    """All SKUs of one bucket, with its own copy of the master data. (How it holds back a
    suspect count, and decides it, is in `quarantine.py`; the WMS's side of transfers, in
    `transfer_handling.py`; how time alone moves a SKU, in `sweep.py`.)"""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.catalog = Catalog()
        self.books: dict[str, SkuBook] = {}
        self.emit = Emitter()
        self.horizon_ms = int(config.inbound_horizon_s * 1000)
        self.slow_movers = rule_of(config)  # None: the rule is off and no sales are kept
        self.explain: SourcingObserver | None = None  # sees every sourcing (stockflow explain)
        self.rebalancing = rule_of_rebalancing(config)  # None: off, and no demand is kept
        self.transfer_terms = terms_of(config)
        self.smart = smart_rule_of(config)  # None: fixed points, and no demand is kept
        self.transfer_skus: set[str] = set()
        self.daily_skus: set[str] = set()  # SKUs a new day changes (sweep.py)
        self._touched: dict[str, tuple[str, datetime, int]] = {}  # sku -> last cause, ts, clock
        # sku -> its WOS protection as last worked out, for SKUs a channel protects (not state:
        # snapshots leave it out, and a restored ledger works it out again)
        self.wos_memos: dict[str, WosMemo] = {}
        self.published_skus: list[str] = []  # the SKUs the last batch touched
        self.clock_ms = 0  # the clock of the last item applied
        self.shortage_units = 0  # units found committed beyond supply, since start (metrics)
        # Quarantined snapshots of this bucket: event id -> (sku, node). Approvals and
        # rejections name only the event id, and reach every bucket; the one holding it acts.
        self.quarantined: dict[str, tuple[str, str]] = {}
        # Approvals and rejections that found their snapshot, since start: those routed minus
        # these (summed over buckets) named one unknown or already decided, and did nothing.
        self.verdicts_applied = 0
        self.guard_decisions: list[GuardDecision] = []  # the last batch's, for the edge's logs
        self.taken: list[CheckoutTaken] = []  # the last batch's checkout intakes, to journal
        self._note_guards()
        # After a restart: the SKUs whose availability was published whole again. The run that
        # died may have published values after the snapshot that the rerun, batching
        # differently, would coalesce away; so each SKU's first publication after a restart
        # says every channel, and the last value on the topic is the truth again. (None: every
        # publication says only what changed, as in a replay.)
        self.republished: set[str] | None = None
        self._handlers = {
            NodeUpserted: self._node,
            ChannelUpserted: self._channel,
            PolicyUpserted: self._policy,
            StockSnapshot: self._snapshot,
            StockSnapshotApproved: self._approved,
            StockSnapshotRejected: self._rejected,
            StockAdjusted: self._adjusted,
            SupplyInbound: self._inbound,
            SupplyReceived: self._received,
            TransferShipped: self._transfer_shipped,
            TransferCancelled: self._transfer_cancelled,
            ShipmentConfirmed: self._shipment,
            OrderReturned: self._returned,
            OrderCreated: self._created,
            OrderPaid: self._paid,
            OrderCancelled: self._cancelled,
            Expire: self._expire,
            Forget: self._forget,
            InboundDue: self._inbound_due,
            CheckoutTaken: self._checkout_taken,
            CheckoutDue: self._checkout_due,
            Sweep: self._sweep,
        }

    # -- driving ------------------------------------------------------------------------

    def apply_batch(self, items: list[Work]) -> list[OutputEvent]:
        """Apply routed work in order; returns its outputs, then the availability changes."""
        if self.guard_decisions:
            self.guard_decisions = []
        if self.taken:
            self.taken = []
        for item in items:
            self.apply(item)
        self.emit.end_cause()
        self.publish_availability()
        return self.emit.drain()

    def apply(self, item: Work) -> None:
        clock_ms, seq, cause, payload, skus = item
        self.clock_ms = clock_ms
        self.emit.set_cause(cause.event_id, cause.ts)
        self._handlers[type(payload)](payload, clock_ms, seq, skus)

    def publish_availability(self) -> None:
        republished = self.republished
        for sku, (cause, ts, clock_ms) in self._touched.items():
            book = self.books.get(sku)
            if book is not None:
                whole = republished is not None and sku not in republished
                if whole:
                    republished.add(sku)
                publish_changes(
                    sku, book, self.catalog, clock_ms + self.horizon_ms, self.emit, cause, ts,
                    whole, clock_ms, self.config.wos_protection, self._wos_memo(sku, book),
                )
        self.published_skus = list(self._touched)
        self._note_transfers(self.published_skus)
        self._note_daily(self.published_skus)
        self._touched.clear()

    def _ctx(self, sku: str, clock_ms: int) -> Ctx:
        book = self.books.get(sku)
        if book is None:
            book = self.books[sku] = SkuBook()
        self._touched[sku] = (self.emit.cause, self.emit.ts, clock_ms)
        ctx = Ctx(sku, book, self.catalog, self.emit, clock_ms + self.horizon_ms, clock_ms,
                  self.config.sourcing_rank, self.explain, self.config.wos_protection,
                  self.config.regional_reserve_weeks, self._wos_memo(sku, book))
        # Any event is the SKU's chance to be judged as a slow mover on a new day, on the
        # stock it had before the event, and to catch up with the clock otherwise; a sweep
        # is the chance of SKUs no event touches (sweep.py).
        self._catch_up(ctx)
        return ctx

    def _wos_memo(self, sku: str, book: SkuBook) -> WosMemo | None:
        """The SKU's protection memo while some channel protects it; dropped once none does."""
        if book.wos is None:
            self.wos_memos.pop(sku, None)
            return None
        memo = self.wos_memos.get(sku)
        if memo is None:
            memo = self.wos_memos[sku] = WosMemo()
        return memo

    def _after_change(self, ctx: Ctx, supply_fell: bool = False) -> None:
        """After an event: no node over-committed, backorders filled, reorder points checked,
        promise dates true where on hand or inbound moved."""
        ctx.changed()
        positions = ctx.book.positions
        while True:
            while supply_fell:
                # A transfer taken back from its source is no longer in transit to its
                # destination, which may be over-committed in turn: another pass.
                transfers = len(ctx.book.transfers or ())
                for node in list(positions):
                    self.shortage_units += resolve_shortage(ctx, node)
                supply_fell = len(ctx.book.transfers or ()) < transfers
            if ctx.supply_rose:
                fill_backorders(ctx)
            self._check_reorder_points(ctx)
            # A transfer taken back for want of on hand: its destination's inbound fell.
            supply_fell = keep_promises(ctx)
            if not supply_fell:
                break

    # -- master data --------------------------------------------------------------------

    def _node(self, ev: NodeUpserted, clock_ms: int, seq: int, skus) -> None:
        self.catalog.upsert_node(ev.node)
        self._note_guards()
        self._touch_all(clock_ms)

    def _channel(self, ev: ChannelUpserted, clock_ms: int, seq: int, skus) -> None:
        self.catalog.upsert_channel(ev.channel)
        self._touch_all(clock_ms)

    def _touch_all(self, clock_ms: int) -> None:
        for sku in self.books:
            self._touched[sku] = (self.emit.cause, self.emit.ts, clock_ms)

    def _policy(self, ev: PolicyUpserted, clock_ms: int, seq: int, skus) -> None:
        ctx = self._ctx(ev.sku, clock_ms)
        pos = ctx.book.position(ev.node)
        ctx.supply_rose = ev.safety_stock < pos.safety_stock
        pos.safety_stock = ev.safety_stock
        pos.reorder_point = ev.reorder_point
        pos.order_up_to = ev.order_up_to
        if self.smart is not None and ev.reorder_point is not None:
            start_demand(pos, clock_ms, self.smart)
        self._after_change(ctx)

    # -- supply -------------------------------------------------------------------------

    def _snapshot(self, ev: StockSnapshot, clock_ms: int, seq: int, skus) -> None:
        ctx = self._ctx(ev.sku, clock_ms)
        pos = ctx.book.position(ev.node)
        if pos.seq is not None and ev.seq <= pos.seq:
            return  # stale: an older count than one already applied
        if ctx.book.quarantined is not None and not self._supersede(ctx, ev):
            return  # stale: not newer than the count held back
        if self.guarded and self._suspect(ev, pos):
            self._quarantine(ctx, ev, pos)
        else:
            self._set_count(ctx, ev.node, ev.on_hand, ev.seq)

    def _set_count(self, ctx: Ctx, node: str, on_hand: int, seq: int) -> None:
        """An absolute count: on hand becomes it; below what is committed, that is a shortage."""
        pos = ctx.book.position(node)
        if pos.seq is not None and on_hand != pos.on_hand:
            ctx.emit.alert(
                "drift", ctx.sku,
                f"snapshot on hand {on_hand} vs ledger {pos.on_hand} "
                f"({on_hand - pos.on_hand:+d})",
                node,
            )
        change = on_hand - pos.on_hand
        ctx.moved_at(node)
        pos.on_hand = on_hand
        pos.seq = seq
        pos.reported = True
        ctx.supply_rose = ctx.supply_rose or change > 0
        self._after_change(ctx, supply_fell=change < 0)

    def _adjusted(self, ev: StockAdjusted, clock_ms: int, seq: int, skus) -> None:
        ctx = self._ctx(ev.sku, clock_ms)
        self._change_on_hand(ctx, ev.node, ev.delta)
        self._after_change(ctx, supply_fell=ev.delta < 0)

    def _change_on_hand(self, ctx: Ctx, node: str, delta: int) -> None:
        """On hand moves by `delta`, a signed running sum: below zero it is a debt (the WMS
        shipped or wrote off more than the engine knew of), said as drift. Nothing is
        promised against a debt, and later receipts pay it first."""
        pos = ctx.book.position(node)
        before = pos.on_hand
        ctx.moved_at(node)
        pos.on_hand += delta
        pos.reported = True
        if delta > 0:
            ctx.supply_rose = True
        elif delta < 0 and pos.on_hand < 0:
            ctx.emit.alert(
                "drift", ctx.sku,
                f"on hand {before} {delta:+d} = {pos.on_hand}: a debt of {-pos.on_hand}, "
                "paid first by the next receipts; nothing is promised against it",
                node,
            )

    def _inbound(self, ev: SupplyInbound, clock_ms: int, seq: int, skus) -> None:
        ctx = self._ctx(ev.sku, clock_ms)
        pos = ctx.book.position(ev.node)
        pos.reported = True
        ctx.moved_at(ev.node)
        old_qty = pos.set_inbound(ev.supply_id, ev.qty, epoch_ms(ev.eta), ev.kind)
        if self.smart is not None and self.smart.lead_days is None \
                and ev.kind == "purchase_order":
            announced(pos, ev.supply_id, clock_ms)
        ctx.supply_rose = ev.qty > 0
        self._after_change(ctx, supply_fell=ev.qty < old_qty)

    def _inbound_due(self, cmd: InboundDue, clock_ms: int, seq: int, skus) -> None:
        self._ctx(cmd.sku, clock_ms)  # counts the supply in, fills backorders, republishes

    def _checkout_taken(self, ev: CheckoutTaken, clock_ms: int, seq: int, skus) -> None:
        book = self.books.get(ev.sku)
        if book is not None and ev.n <= book.intake_n:
            return  # applied already
        self.taken.append(ev)
        if not ev.holds and (book is None or not book.checkouts):
            if book is not None:
                book.intake_n = ev.n
            return
        ctx = self._ctx(ev.sku, clock_ms)
        ctx.book.intake_n = ev.n
        reconcile(ctx, ev.holds, seq, ev.released)
        self._after_change(ctx)

    def _checkout_due(self, cmd: CheckoutDue, clock_ms: int, seq: int, skus) -> None:
        """Nothing of its own: the intake it asked for stands before it (`with_intakes`)."""

    def _received(self, ev: SupplyReceived, clock_ms: int, seq: int, skus) -> None:
        ctx = self._ctx(ev.sku, clock_ms)
        pos = ctx.book.position(ev.node)
        ctx.moved_at(ev.node)
        if ctx.book.transfers is None or not receive_transfer(ctx, ev.supply_id, ev.node, ev.qty):
            pos.receive_inbound(ev.supply_id, ev.qty)
        if pos.purchases is not None:
            received(pos, ev.supply_id, clock_ms)
        pos.on_hand += ev.qty
        pos.reported = True
        ctx.supply_rose = True  # received stock is sellable now, whatever its ETA said
        self._after_change(ctx)

    def _shipment(self, ev: ShipmentConfirmed, clock_ms: int, seq: int, skus) -> None:
        ctx = self._ctx(ev.sku, clock_ms)
        line = ctx.book.line(ev.order_id, ev.line_id)
        consumed = ship_line(ctx, line, ev.node, ev.qty)
        self._change_on_hand(ctx, ev.node, -ev.qty)
        ctx.emit.status(
            line or unknown_line(ev.order_id, ev.line_id), ev.sku, SHIPPED, ev.qty, ev.node,
            reason=None if consumed == ev.qty else "shipped_beyond_allocation",
        )
        self._after_change(ctx, supply_fell=consumed < ev.qty)

    def _returned(self, ev: OrderReturned, clock_ms: int, seq: int, skus) -> None:
        ctx = self._ctx(ev.sku, clock_ms)
        line = ctx.book.line(ev.order_id, ev.line_id)
        return_line(line)
        if ev.restock:
            self._change_on_hand(ctx, ev.node, ev.qty)
        ctx.emit.status(
            line or unknown_line(ev.order_id, ev.line_id), ev.sku, RETURNED, ev.qty, ev.node,
            reason="restocked" if ev.restock else "not_restocked",
        )
        self._after_change(ctx)

    # -- demand -------------------------------------------------------------------------

    def _created(self, ev: OrderCreated, clock_ms: int, seq: int, skus) -> None:
        channel = self.catalog.channels.get(ev.channel)
        deadline = None
        if not ev.paid and channel is not None:
            deadline = hold_deadline(clock_ms, channel)
        ship_to = ev.ship_to
        for ol in ev.lines:
            if ol.sku not in skus:  # another bucket's line
                continue
            ctx = self._ctx(ol.sku, clock_ms)
            if ctx.book.line(ev.order_id, ol.line_id) is not None:
                continue
            line = Line(
                order_id=ev.order_id, line_id=ol.line_id, qty=ol.qty, channel=ev.channel,
                region=ship_to.region, lat=ship_to.lat, lon=ship_to.lon,
                fulfillment=ev.fulfillment, pickup_node=ev.pickup_node, paid=ev.paid,
                seq=seq, deadline_ms=deadline,
            )
            ctx.book.add_line(line)
            if ev.hold_id is not None:
                settle(ctx, ev.hold_id)  # the checkout's units pass to this line
            place_or_queue(ctx, line)
            count_line(ctx, line, ship_to, clock_ms,
                       regional=self.config.regional_reserve_weeks is not None,
                       slow_movers=self.slow_movers, rebalancing=self.rebalancing,
                       smart=self.smart)
            self._after_change(ctx)

    def _order_lines(self, order_id: str, skus, clock_ms: int):
        """(ctx, line) for every line of the order in this bucket, in line order."""
        for sku in skus or ():
            ctx = self._ctx(sku, clock_ms)
            lines = ctx.book.lines.get(order_id)
            if lines:
                for line in list(lines.values()):
                    yield ctx, line

    def _paid(self, ev: OrderPaid, clock_ms: int, seq: int, skus) -> None:
        for ctx, line in self._order_lines(ev.order_id, skus, clock_ms):
            pay_line(ctx, line)
            self._after_change(ctx)

    def _cancelled(self, ev: OrderCancelled, clock_ms: int, seq: int, skus) -> None:
        only = set(ev.line_ids) if ev.line_ids is not None else None
        for ctx, line in self._order_lines(ev.order_id, skus, clock_ms):
            if only is None or line.line_id in only:
                cancel_line(ctx, line)
                self._after_change(ctx)

    def _expire(self, cmd: Expire, clock_ms: int, seq: int, skus) -> None:
        for ctx, line in self._order_lines(cmd.order_id, skus, clock_ms):
            expire_line(ctx, line)
            self._after_change(ctx)

    def _forget(self, cmd: Forget, clock_ms: int, seq: int, skus) -> None:
        for sku in skus or ():
            book = self.books.get(sku)
            if book is not None:
                forget_lines(book, cmd.order_id)

    # -- state --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The bucket's whole state as msgpack: compact, and immutable once taken."""
        return _ENCODER.encode(_Snapshot(catalog=self.catalog.snapshot(), books=self.books))

    @classmethod
    def restore(cls, data: bytes, config: EngineConfig) -> "Ledger":
        snap = _DECODER.decode(data)
        ledger = cls(config)
        ledger.catalog = Catalog.restore(*snap.catalog)
        ledger._note_guards()
        ledger.books = snap.books
        for book in ledger.books.values():
            book.count_open()
        ledger.republished = set()
        ledger.find_quarantined()
        ledger.find_transfers()
        ledger.find_daily()
        return ledger


class _Snapshot(msgspec.Struct, array_like=True):
    catalog: tuple[list[Node], list[Channel]]
    books: dict[str, SkuBook]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Snapshot)
