"""The generator's lines: event times in whole milliseconds, ids in order, None fields left out."""

import re
from datetime import datetime, timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.ops.generate import BASE_TIME
from stockflow.ops.generate.lines import SHIP_ORDER_NULLS, LineWriter
from stockflow.state import events as ev

DECODER = msgspec.json.Decoder(ev.InputEvent)
MS_TIME = re.compile(rb'^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$')
TIMES = st.integers(0, 40 * 86_400_000)  # far past any trace's span


@settings(max_examples=300)
@given(TIMES)
def test_a_stamp_is_the_same_instant_in_whole_milliseconds(t):
    dt, old, new = LineWriter().stamp(t)
    assert dt == BASE_TIME + timedelta(milliseconds=t)
    assert msgspec.json.decode(old, type=datetime) == dt
    assert MS_TIME.match(new), new
    assert msgspec.json.decode(new, type=datetime) == dt


@settings(max_examples=100)
@given(st.lists(TIMES, min_size=1, max_size=20))
def test_lines_carry_their_own_time_and_ids_in_order(times):
    writer = LineWriter()
    for i, t in enumerate(sorted(times), start=1):
        event_id, ts = writer.next_event(t)
        line = writer.line(ev.OrderPaid(event_id=event_id, ts=ts, order_id="TM-1"))
        assert event_id == f"g-{i}"
        assert MS_TIME.match(re.search(rb'"ts":("[^"]*")', line).group(1))
        assert DECODER.decode(line) == ev.OrderPaid(event_id=event_id, ts=ts, order_id="TM-1")


def test_none_fields_named_are_left_out_and_the_line_still_decodes():
    writer = LineWriter()
    event_id, ts = writer.next_event(1_234)
    order = ev.OrderCreated(
        event_id=event_id, ts=ts, order_id="JD-1", channel="jd",
        lines=[ev.OrderLine(line_id="1", sku="SKU-00001", qty=2)],
        ship_to=ev.ShipTo(region="Beijing", lat=39.9, lon=116.4), fulfillment="ship", paid=True)
    line = writer.line(order, SHIP_ORDER_NULLS)
    assert b"null" not in line
    assert b'"ts":"2026-11-10T00:00:01.234Z"' in line
    assert DECODER.decode(line) == order
