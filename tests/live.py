"""Driving live mode in tests: the benchmarks' harness, plus decoding the outputs."""

from __future__ import annotations

import msgspec

from stockflow.ops.bench.harness import LiveRun as _LiveRun
from stockflow.state.outputs import STREAMS, OutputEvent

DECODE_OUTPUT = msgspec.json.Decoder(OutputEvent).decode


class LiveRun(_LiveRun):
    def decoded(self) -> list:
        return [DECODE_OUTPUT(value) for stream, value in self.outputs() if stream in STREAMS]
