"""Position keeps inbound totals incrementally; they must always equal a recount."""

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


def _due(pos: Position, until: int) -> int:
    return sum(i.qty for i in pos.inbound.values() if i.eta_ms <= until)


@settings(max_examples=500)
@given(st.lists(OPS, max_size=40))
def test_incremental_inbound_equals_a_recount(ops):
    pos = Position(on_hand=5, held=1, allocated=2, safety_stock=1)
    for op in ops:
        if op[0] == "set":
            _, supply, qty, eta = op
            before = pos.inbound.get(supply)
            old = pos.set_inbound(supply, qty, eta, "purchase")
            assert old == (before.qty if before else 0)
        elif op[0] == "receive":
            pos.receive_inbound(op[1], op[2])
        elif op[0] == "atp":
            assert pos.atp(op[1]) == 5 + _due(pos, op[1]) - 1 - 2 - 1
        else:
            due_before = _due(pos, pos.due_until)
            became = pos.advance(op[1])
            if became:
                assert _due(pos, op[1]) > due_before
        assert pos.inbound_qty == sum(i.qty for i in pos.inbound.values())
        assert pos.due_qty == _due(pos, pos.due_until)
        later = [i.eta_ms for i in pos.inbound.values() if i.eta_ms > pos.due_until]
        assert pos.next_eta == (min(later) if later else None)
        assert all(i.qty > 0 for i in pos.inbound.values())
