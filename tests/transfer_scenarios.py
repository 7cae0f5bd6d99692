"""Random histories with transfers in flight, for the property tests of `test_transfers.py`.

The world of `test_promise.py` (3 nodes in two regions, 3 channels, 2 SKUs) with reorder
points that ask for transfers, and, when drawn, rebalancing on. Histories are drawn step by
step beside a running engine, so the WMS's events can name the transfers it really asked for:
shipments (short, exact or beyond on hand, now and then to another node or under an id the
engine never gave), receipts (partial, before the shipment), cancellations, and time passing
their deadlines, among orders, payments, counts, adjustments, receipts and redeliveries.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st

from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import (
    PolicyUpserted,
    StockSnapshot,
    SupplyReceived,
    TransferCancelled,
    TransferShipped,
)

from .test_promise import MASTER, NODES, SKUS, T0, event_body

DAY_S = 86400
STEPS = ["body"] * 6 + ["ship", "ship", "receive", "receive", "cancel", "later", "again"]


@st.composite
def transfer_config(draw) -> EngineConfig:
    rebalancing = draw(st.booleans())
    return EngineConfig(
        buckets=3,
        dedup_window_s=30 * DAY_S,  # redeliveries come days later here: still duplicates
        transfer_lead_s=draw(st.sampled_from([0, 60, 5 * DAY_S])),  # 5 days: past the horizon
        transfer_ttl_s=draw(st.sampled_from([30, 120, DAY_S])),
        rebalance_cover_weeks=draw(st.sampled_from([1.0, 4.0])) if rebalancing else None,
        rebalance_surplus_weeks=draw(st.sampled_from([0.0, 2.0])),
        rebalance_window_days=draw(st.integers(1, 3)),
        rebalance_min_units=1,
        sweep_interval_s=draw(st.sampled_from([60, 3600, 86400])),  # late ones: swept when
    )


@st.composite
def transfer_histories(draw, max_steps: int = 50):
    """(config, events)."""
    config = draw(transfer_config())
    events = list(MASTER)
    for i, (s, n) in enumerate((s, n) for s in SKUS for n in NODES):
        events.append(StockSnapshot(event_id=f"open-{i}", ts=T0, sku=s, node=n,
                                    on_hand=draw(st.integers(0, 12)), seq=0))
    for i, s in enumerate(SKUS):
        events.append(PolicyUpserted(event_id=f"policy-{i}", ts=T0, sku=s,
                                     node=draw(st.sampled_from(NODES)), safety_stock=0,
                                     reorder_point=draw(st.integers(2, 6))))
    opening = len(events)
    engine = Engine(config)
    for ev in events:
        engine.process([ev])
    t = T0
    for i in range(draw(st.integers(10, max_steps))):
        t += timedelta(seconds=draw(st.integers(-3, 15)))
        step = draw(st.sampled_from(STEPS))
        if step == "again":
            ev = events[draw(st.integers(opening, len(events) - 1))] if len(events) > opening \
                else None
        else:
            if step == "later":
                t += timedelta(seconds=draw(st.sampled_from([100, 4000, DAY_S, 2 * DAY_S])))
            ev = _wms_event(draw, step, engine, f"w{i}", t) or _body(draw, f"w{i}", t)
        if ev is not None:
            engine.process([ev])
            events.append(ev)
    return config, events


def _body(draw, event_id: str, ts):
    fields = dict(draw(event_body))
    type_ = fields.pop("type")
    return type_(event_id=event_id, ts=ts, **fields)


def _wms_event(draw, step: str, engine: Engine, event_id: str, ts):
    """A shipment, receipt or cancellation of an open transfer (None if there is none)."""
    open_ = sorted((sku, command_id, t) for sku, book in engine.books()
                   for command_id, t in (book.transfers or {}).items())
    if step not in ("ship", "receive", "cancel"):
        return None
    if not open_ or draw(st.integers(0, 5)) == 0:  # one the engine never asked for
        sku, command_id = draw(st.sampled_from(SKUS)), "WMS-1"
        from_node, to_node = draw(st.permutations(NODES))[:2]
        qty = 3
    else:
        sku, command_id, t = draw(st.sampled_from(open_))
        from_node, to_node, qty = t.from_node, t.to_node, t.qty
        if draw(st.integers(0, 5)) == 0:  # shipped to another node than asked
            to_node = draw(st.sampled_from(NODES))
    if step == "ship":
        return TransferShipped(event_id=event_id, ts=ts, command_id=command_id, sku=sku,
                               from_node=from_node, to_node=to_node,
                               qty=draw(st.integers(1, qty + 3)))
    if step == "receive":
        return SupplyReceived(event_id=event_id, ts=ts, supply_id=command_id, sku=sku,
                              node=to_node, qty=draw(st.integers(1, qty + 1)))
    return TransferCancelled(event_id=event_id, ts=ts, command_id=command_id)
