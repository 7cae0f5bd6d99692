"""Events cross processes (and land in snapshots) as msgpack, and come back equal."""

from __future__ import annotations

import pickle
from pathlib import Path

import msgspec

from stockflow.connectors import exchange
from stockflow.connectors.codec import decode_lines
from stockflow.state.events import Malformed

from .shared_data import EXAMPLES


def test_every_input_event_pickles_through_msgpack_and_back():
    exchange.register()
    events = decode_lines(Path(EXAMPLES).read_bytes().splitlines(), "examples", 1)
    assert len({type(e) for e in events}) >= 13
    back = pickle.loads(pickle.dumps(events, protocol=5))
    assert back == events and [type(e) for e in back] == [type(e) for e in events]
    one = pickle.dumps(events[0], protocol=5)
    assert msgspec.msgpack.encode(events[0]) in one  # the msgpack form, not the fields
    bad = Malformed("{", "not json", "t:0:1")
    assert pickle.loads(pickle.dumps(bad)) == bad
