"""WOS protection kept from event to event (state/wos_memo.py): given again only while every
input it was worked out from is equal, so each decision is the one worked out afresh."""

from __future__ import annotations

from unittest.mock import patch

import msgspec
from hypothesis import given

from stockflow.state.book import SkuBook
from stockflow.state.events import Channel, Node
from stockflow.state.master import Catalog
from stockflow.state.wos import (
    DAY_MS,
    WEEK_MS,
    ChannelRate,
    against,
    protected_units,
    shares,
)
from stockflow.state.wos_memo import WosMemo

from .test_promise import PROPERTY, histories, run
from .test_wos import weeks, with_wos

CLOCK_MS = 100 * DAY_MS + 3_600_000  # an hour into a day
UNTIL_MS = CLOCK_MS + 60_000


def afresh_units(memo, book, catalog, until_ms, clock_ms):
    return protected_units(book, catalog, until_ms, clock_ms)


def afresh_spread(memo, book, catalog, until_ms, clock_ms, units):
    return memo._keep(None, shares(book, catalog, until_ms, clock_ms, units))


def afresh_against(memo, channel_id):
    return against(memo.shares or {}, channel_id)


@PROPERTY
@given(histories(), weeks, weeks)
def test_every_output_is_the_same_as_with_protection_worked_out_at_every_question(
        events, web, live):
    events = with_wos(events, web, live)
    kept = run(events)
    with patch.object(WosMemo, "units", afresh_units), \
            patch.object(WosMemo, "spread", afresh_spread), \
            patch.object(WosMemo, "against", afresh_against):
        afresh = run(events)
    encode = msgspec.json.encode
    assert [encode(o) for o in kept] == [encode(o) for o in afresh]


def shop_and_market() -> tuple[SkuBook, Catalog]:
    """Nodes A and B; a shop with `wos_weeks` 2 ordering 70 a week, and a market; 100 units
    at each node."""
    catalog = Catalog()
    for node in ("A", "B"):
        catalog.upsert_node(Node(id=node, kind="dc", region="r", lat=0.0, lon=0.0,
                                 can_ship=True, can_pickup=False))
    catalog.upsert_channel(Channel(id="shop", nodes=["*"], hold_ttl_s=60, allow_split=True,
                                   backorder=False, wos_weeks=2))
    catalog.upsert_channel(Channel(id="market", nodes=["*"], hold_ttl_s=60, allow_split=True,
                                   backorder=False))
    book = SkuBook()
    book.position("A").on_hand = 100
    book.position("B").on_hand = 100
    book.wos = {"shop": ChannelRate(70.0, CLOCK_MS)}
    return book, catalog


def test_the_same_inputs_give_the_same_protection_without_working_it_out_again():
    book, catalog = shop_and_market()
    memo = WosMemo()
    units = memo.units(book, catalog, UNTIL_MS, CLOCK_MS)
    spread = memo.spread(book, catalog, UNTIL_MS, CLOCK_MS, units)
    assert units == {"shop": 140}
    assert spread == {"shop": {"A": 70, "B": 70}}
    assert memo.against("market") == {"A": 70, "B": 70}
    # a minute later, the same day and horizon
    assert memo.units(book, catalog, UNTIL_MS + 60_000, CLOCK_MS + 60_000) is units
    assert memo.spread(book, catalog, UNTIL_MS, CLOCK_MS, units) is spread


def test_a_supply_moved_nearer_with_the_same_units_is_seen():
    """Only its ETA changes: nodes, totals and counts stay as they were."""
    book, catalog = shop_and_market()
    memo = WosMemo()
    book.position("B").set_inbound("S1", 50, UNTIL_MS + 2 * WEEK_MS, "po")
    assert memo.units(book, catalog, UNTIL_MS, CLOCK_MS) == {"shop": 140}
    book.position("B").set_inbound("S1", 50, UNTIL_MS + WEEK_MS, "po")
    nearer = memo.units(book, catalog, UNTIL_MS, CLOCK_MS)
    assert nearer == protected_units(book, catalog, UNTIL_MS, CLOCK_MS)
    assert nearer["shop"] < 140


def test_the_nearer_supply_received_in_full_is_seen():
    """The next inbound is kept while no entry changes: a receipt is a change."""
    book, catalog = shop_and_market()
    memo = WosMemo()
    book.position("B").set_inbound("S1", 50, UNTIL_MS + WEEK_MS, "po")
    book.position("B").set_inbound("S2", 50, UNTIL_MS + 3 * WEEK_MS, "po")
    assert memo.units(book, catalog, UNTIL_MS, CLOCK_MS)["shop"] < 140
    book.position("B").receive_inbound("S1", 50)
    assert (memo.units(book, catalog, UNTIL_MS, CLOCK_MS)
            == protected_units(book, catalog, UNTIL_MS, CLOCK_MS) == {"shop": 140})


def test_a_new_rate_a_new_day_and_new_master_data_are_seen():
    book, catalog = shop_and_market()
    memo = WosMemo()
    assert memo.units(book, catalog, UNTIL_MS, CLOCK_MS) == {"shop": 140}
    book.wos["shop"].rate = 80.0
    assert memo.units(book, catalog, UNTIL_MS, CLOCK_MS) == {"shop": 160}
    later = CLOCK_MS + 7 * DAY_MS  # a week later its rate has decayed
    assert (memo.units(book, catalog, later + 60_000, later)
            == protected_units(book, catalog, later + 60_000, later) == {"shop": 59})
    catalog.upsert_channel(Channel(id="shop", nodes=["*"], hold_ttl_s=60, allow_split=True,
                                   backorder=False, wos_weeks=1))
    assert memo.units(book, catalog, UNTIL_MS, CLOCK_MS) == {"shop": 80}


def test_stock_that_moved_spreads_again():
    book, catalog = shop_and_market()
    memo = WosMemo()
    units = memo.units(book, catalog, UNTIL_MS, CLOCK_MS)
    assert memo.spread(book, catalog, UNTIL_MS, CLOCK_MS, units) == {"shop": {"A": 70, "B": 70}}
    book.position("A").allocated = 60  # 40 left at A
    assert memo.spread(book, catalog, UNTIL_MS, CLOCK_MS, units) == {"shop": {"A": 40, "B": 100}}
    assert memo.against("market") == {"A": 40, "B": 100}
