"""Sourcing a whole line without working out its guard where the guard cannot change the
answer (state/placement.py, `source_whole`): every decision is the one made with the guard."""

from __future__ import annotations

from unittest.mock import patch

import msgspec
from hypothesis import given

from stockflow.state import placement
from stockflow.state.sourcing import source_line

from .test_promise import PROPERTY, histories, run
from .test_wos import weeks, with_wos


def with_the_guard(ctx, line, exclude, view):
    return source_line(line, line.qty, ctx.book, ctx.catalog, ctx.until_ms, exclude, ctx.rank,
                       view, ctx.guard(line))


@PROPERTY
@given(histories(), weeks, weeks)
def test_every_output_is_the_same_as_with_the_guard_worked_out_for_every_line(events, web, live):
    events = with_wos(events, web, live)
    quick = run(events)
    with patch.object(placement, "source_whole", with_the_guard):
        guarded = run(events)
    encode = msgspec.json.encode
    assert [encode(o) for o in quick] == [encode(o) for o in guarded]
