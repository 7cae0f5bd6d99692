"""Synthetic omnichannel workload: a stream of contract-v1 input events as JSON Lines.

`generate(Scenario(...))` yields one message per line, in event-time order, and is
deterministic: the same Scenario gives byte-identical output (one `random.Random(seed)`, no
`hash()` of strings, no wall clock). Event time starts at 2026-11-10T00:00:00Z.

What the trace holds, in order of event time, and where it is made:

* master data at t0 (`plan.py`, written by `stream.py`): 6 DCs in distinct provinces,
  `stores` stores spread over provinces (all can pick up, some can ship), 1-2 distributors,
  six channels with different policies (tmall, jd, douyin-live, wechat, own-shop, store-pos;
  `world.py`) and `policy.upserted` for ~30% of the sku x DC pairs;
* at t0+60s a `stock.snapshot` for every SKU at every DC (plus a few stores per SKU and a
  distributor for some), sized to the SKU's popularity (`stock.py`);
* from t0+120s, over a span that grows with the size of the trace (`budget.py`), three
  arrival processes merged in time (`schedule.py`, `stream.py`):
  - orders (`orders.py`): Zipf-popular SKUs (exponent 1.1), 1-4 lines, qty mostly 1-3,
    weighted channels, store-pos orders are pickups at a store; ~60% paid at creation, the
    unpaid mostly paid within the hold TTL, some late, some never; ~3% cancelled (some per
    line), a few returns, ~1% resent `order.created` under a new event_id;
  - a flash sale: a 2-minute window with ~15% of all orders on 3-5 hot SKUs, mostly on
    douyin-live;
  - supply (`supply.py`): periodic snapshots (rising `seq`, ~2% stale), `stock.adjusted`
    deltas (damage, found, cycle counts, large write-offs), `supply.inbound` (in transit,
    production, purchase order) followed later by `supply.received` (sometimes partial,
    sometimes never);
* ~0.5% of messages are re-sent as exact duplicates (same bytes) right after the original,
  and `malformed_rate` of the lines are dead-letter material (`malformed.py`: truncated JSON,
  unknown type, missing field, wrong type, qty 0, empty lines, pickup without pickup_node).

No `shipment.confirmed` is emitted: the generator cannot know which node the engine picks.
Physical stock therefore only moves by adjustments, receipts and restocked returns, and the
periodic snapshots report exactly that (plus small counting drift now and then).

All draws come from one generator in a fixed order, so a change that draws one number more
or less, or in another place, changes every line after it: `tests/test_generate.py` pins the
bytes of two traces.
"""

from .plan import check_scenario, fit_catalogue
from .scenario import BASE_TIME, DEMO, GENERATED, Scenario
from .stream import generate, write_jsonl

__all__ = ["Scenario", "GENERATED", "DEMO", "generate", "write_jsonl", "check_scenario",
           "fit_catalogue", "BASE_TIME"]
