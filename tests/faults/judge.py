"""How a drill is judged: the live outputs, deduplicated, against `stockflow replay` of what
Kafka recorded (the uninterrupted run), and the promise checked on the live outputs alone."""

from __future__ import annotations

import msgspec

from stockflow.connectors.codec import decode_message
from stockflow.state.events import Malformed
from stockflow.state.outputs import DeadLetter, OrderStatus

from ..invariants import PromiseBroken, audit_end_state
from ..live_runs import LiveRun, commands_and_statuses, replay_of_recorded
from ..test_dataflow import final_availability, nonzero

_ENCODE = msgspec.json.Encoder().encode


def judge(run: LiveRun) -> dict:
    """Figures of one drill's run; every one is 0 (or True) when nothing went wrong."""
    live = run.decoded()
    replayed, merged = replay_of_recorded(run)
    unique = list({_ENCODE(o): o for o in live}.values())  # at least once: repeats dropped
    live_effects, effects = commands_and_statuses(unique), commands_and_statuses(replayed)
    return {
        "lines_lost": len(_lines(replayed) - _lines(unique)),
        "effects_lost": len(effects - live_effects),
        "effects_duplicated": len(live_effects - effects),
        "over_committed": _over_committed(merged, unique),
        # the last value as the topic holds it, repeats and all
        "availability_as_replay":
            nonzero(final_availability(live)) == nonzero(final_availability(replayed)),
        "dead_letters": sum(type(o) is DeadLetter for o in unique),
    }


def _lines(outputs: list) -> set:
    return {(o.order_id, o.line_id) for o in outputs if type(o) is OrderStatus}


def _over_committed(merged: list[bytes], outputs: list) -> int:
    """0 if no SKU x node ends committed beyond its supply and every line has a status."""
    events = [e for e in (decode_message(raw, "recorded") for raw in merged)
              if type(e) is not Malformed]
    try:
        audit_end_state(events, outputs)
    except PromiseBroken as broken:
        print(f"promise broken: {broken}")
        return 1
    return 0
