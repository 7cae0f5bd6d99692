"""Driving live mode in tests: the benchmarks' harness, decoding the outputs, and the
reference every live run is judged against: `stockflow replay` of what Kafka recorded."""

from __future__ import annotations

import msgspec

from stockflow.ops.bench.harness import LiveRun as _LiveRun
from stockflow.ops.bench.kafka_runs import LAYOUT  # noqa: F401 (the README's layout, for tests)
from stockflow.ops.generate import Scenario, write_jsonl
from stockflow.ops.summary import read_outputs
from stockflow.state.outputs import STREAMS, AvailabilityChanged, DeadLetter, OutputEvent

DECODE_OUTPUT = msgspec.json.Decoder(OutputEvent).decode
_ENCODE = msgspec.json.Encoder().encode


class LiveRun(_LiveRun):
    def decoded(self) -> list:
        return [DECODE_OUTPUT(value) for stream, value in self.outputs() if stream in STREAMS]


def generated_trace(directory, **scenario):
    """A generated workload written to `directory/events.jsonl`; its path."""
    path = directory / "events.jsonl"
    with open(path, "wb") as f:
        write_jsonl(Scenario(malformed_rate=0.002, **scenario), f)
    return path


def replay_of_recorded(run: LiveRun) -> tuple[list, list[bytes]]:
    """The outputs of `stockflow replay` over the recorded input topics, merged by event
    time; and the merged input itself."""
    out, merged = run.replay_recorded()
    return [o for stream in STREAMS for o in read_outputs(out, stream)], merged


def commands_and_statuses(outputs: list) -> set[bytes]:
    """Every output but dead letters and availability (coalesced per batch, so a restart may
    group it differently), deduplicated by content: command ids and causes included."""
    return {_ENCODE(o) for o in outputs if type(o) not in (DeadLetter, AvailabilityChanged)}
