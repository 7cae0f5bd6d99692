"""Inbound supply keeps its totals incrementally; they must always equal a recount."""

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.state.position import Position

SUPPLIES = st.sampled_from(["PO-1", "PO-2", "PO-3", "TR-1"])
ETAS = st.integers(0, 100)

OPS = st.one_of(
    st.tuples(st.just("set"), SUPPLIES, st.integers(0, 20), ETAS),
    st.tuples(st.just("receive"), SUPPLIES, st.integers(1, 20)),
    st.tuples(st.just("atp"), ETAS),
    st.tuples(st.just("advance"), ETAS),
)


def entries(pos: Position) -> dict:
    return pos.inbound.entries if pos.inbound is not None else {}


def due(pos: Position, until: int) -> int:
    return sum(i.qty for i in entries(pos).values() if i.eta_ms <= until)


@settings(max_examples=500)
@given(st.lists(OPS, max_size=40))
def test_incremental_inbound_equals_a_recount(ops):
    pos = Position(on_hand=5, held=1, allocated=2, safety_stock=1)
    for op in ops:
        if op[0] == "set":
            _, supply, qty, eta = op
            before = entries(pos).get(supply)
            old = pos.set_inbound(supply, qty, eta, "purchase")
            assert old == (before.qty if before else 0)
        elif op[0] == "receive":
            pos.receive_inbound(op[1], op[2])
        elif op[0] == "atp":
            assert pos.atp(op[1]) == 5 + due(pos, op[1]) - 1 - 2 - 1
        else:
            until = pos.inbound.until if pos.inbound is not None else 0
            became = pos.advance(op[1])
            if became:
                assert due(pos, op[1]) > due(pos, until)
        assert pos.inbound_qty == sum(i.qty for i in entries(pos).values())
        assert all(i.qty > 0 for i in entries(pos).values())
        if pos.inbound is not None:
            inbound = pos.inbound
            assert inbound.due == due(pos, inbound.until)
            later = [i.eta_ms for i in entries(pos).values() if i.eta_ms > inbound.until]
            assert inbound.next_eta == (min(later) if later else None)
