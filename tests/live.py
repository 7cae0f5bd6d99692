"""Driving live mode in tests: the benchmarks' harness, plus decoding the outputs."""

from __future__ import annotations

import msgspec

from stockflow.ops.bench.harness import LiveRun as _LiveRun
from stockflow.ops.generate import Scenario, write_jsonl
from stockflow.state.outputs import STREAMS, OutputEvent

DECODE_OUTPUT = msgspec.json.Decoder(OutputEvent).decode


class LiveRun(_LiveRun):
    def decoded(self) -> list:
        return [DECODE_OUTPUT(value) for stream, value in self.outputs() if stream in STREAMS]


def generated_trace(directory, **scenario):
    """A generated workload written to `directory/events.jsonl`; its path."""
    path = directory / "events.jsonl"
    with open(path, "wb") as f:
        write_jsonl(Scenario(malformed_rate=0.002, **scenario), f)
    return path
