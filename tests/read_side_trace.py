"""A small trace in the contract's format whose final figures are worked out by hand: what
`stockflow inspect` and the HTTP API must show for it."""

from __future__ import annotations

import json

SKU = "SKU-CREAM-50ML"

EVENTS = [
    {"type": "node.upserted", "event_id": "m-1", "ts": "2026-11-10T08:00:00Z",
     "node": {"id": "DC-SH", "kind": "dc", "region": "Shanghai", "lat": 31.23, "lon": 121.47,
              "can_ship": True, "can_pickup": False}},
    {"type": "node.upserted", "event_id": "m-2", "ts": "2026-11-10T08:00:00Z",
     "node": {"id": "DC-GZ", "kind": "dc", "region": "Guangdong", "lat": 23.13, "lon": 113.26,
              "can_ship": True, "can_pickup": False}},
    {"type": "channel.upserted", "event_id": "m-3", "ts": "2026-11-10T08:00:00Z",
     "channel": {"id": "web", "nodes": ["*"], "hold_ttl_s": 900, "allow_split": False,
                 "backorder": False}},
    {"type": "channel.upserted", "event_id": "m-4", "ts": "2026-11-10T08:00:00Z",
     "channel": {"id": "tmall", "nodes": ["DC-SH", "DC-GZ"], "hold_ttl_s": 900,
                 "allow_split": True, "backorder": False}},
    {"type": "policy.upserted", "event_id": "m-5", "ts": "2026-11-10T08:00:00Z", "sku": SKU,
     "node": "DC-SH", "safety_stock": 2},
    {"type": "stock.snapshot", "event_id": "s-1", "ts": "2026-11-10T09:00:00Z", "sku": SKU,
     "node": "DC-SH", "on_hand": 10, "seq": 1},
    {"type": "stock.snapshot", "event_id": "s-2", "ts": "2026-11-10T09:00:00Z", "sku": SKU,
     "node": "DC-GZ", "on_hand": 4, "seq": 1},
    # due within the 3-day horizon: counted in ATP
    {"type": "supply.inbound", "event_id": "s-3", "ts": "2026-11-10T09:05:00Z",
     "supply_id": "TR-1", "sku": SKU, "node": "DC-SH", "qty": 5,
     "eta": "2026-11-11T08:00:00Z", "kind": "in_transit"},
    # beyond the horizon: shown as inbound, not counted
    {"type": "supply.inbound", "event_id": "s-4", "ts": "2026-11-10T09:06:00Z",
     "supply_id": "PO-1", "sku": SKU, "node": "DC-SH", "qty": 20,
     "eta": "2026-11-20T08:00:00Z", "kind": "purchase_order"},
    # paid, ships to Shanghai: allocated at DC-SH (the nearest that fills it)
    {"type": "order.created", "event_id": "o-1", "ts": "2026-11-10T10:00:00Z",
     "order_id": "W-1", "channel": "web", "lines": [{"line_id": "1", "sku": SKU, "qty": 3}],
     "ship_to": {"region": "Shanghai", "lat": 31.2, "lon": 121.4}, "fulfillment": "ship",
     "paid": True},
    # unpaid, ships to Guangdong: held at DC-GZ for 900 s
    {"type": "order.created", "event_id": "o-2", "ts": "2026-11-10T10:01:00Z",
     "order_id": "W-2", "channel": "web", "lines": [{"line_id": "1", "sku": SKU, "qty": 1}],
     "ship_to": {"region": "Guangdong", "lat": 23.1, "lon": 113.3}, "fulfillment": "ship",
     "paid": False},
]

# DC-SH: 10 on hand + 5 due - 3 allocated - 2 safety = 10; DC-GZ: 4 - 1 held = 3. What on
# hand gives now: DC-SH 10 - 3 = 7, DC-GZ 4 - 1 = 3.
POSITIONS = {
    "DC-GZ": {"sku": SKU, "node": "DC-GZ", "on_hand": 4, "inbound": {}, "inbound_due": 0,
              "held": 1, "allocated": 0, "transfer_out": 0, "safety_stock": 0, "kept_out": 0,
              "now": 3, "atp": 3},
    "DC-SH": {"sku": SKU, "node": "DC-SH", "on_hand": 10,
              "inbound": {"in_transit": {"units": 5, "earliest_eta": "2026-11-11T08:00:00Z"},
                          "purchase_order": {"units": 20,
                                             "earliest_eta": "2026-11-20T08:00:00Z"}},
              "inbound_due": 5, "held": 0, "allocated": 3, "transfer_out": 0, "safety_stock": 2,
              "kept_out": 0, "now": 7,
              "atp": 10},
}
# web does not split: one line gets at most the largest node's ATP; tmall splits.
CHANNELS = {"tmall": {"available": 13, "max_line_qty": 13},
            "web": {"available": 13, "max_line_qty": 10}}


def lines() -> list[bytes]:
    return [json.dumps(e).encode() for e in EVENTS]


def write(path) -> None:
    path.write_bytes(b"\n".join(lines()) + b"\n")
