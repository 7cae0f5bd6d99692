"""Replay: a JSON Lines file (or stdin) through the engine into one file per output stream."""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from stockflow.connectors.files import CHUNK_LINES, JsonLinesSource, StreamFilesSink
from stockflow.state.config import EngineConfig

from .engine import engine
from .logic import AlignTiming


def replay_flow(events_path: str, out_dir: str, config: EngineConfig,
                chunk_lines: int = CHUNK_LINES, observer=None, on_read=None,
                record_times: str | None = None, max_ahead_s: float = 300.0) -> Dataflow:
    """`record_times`: each line's Kafka record timestamp (a replay of recorded topics)."""
    flow = Dataflow("stockflow_replay")
    raw = op.input("read", flow, JsonLinesSource(events_path, chunk_lines, on_read,
                                                 record_times))
    outputs = engine(raw, config, timing=AlignTiming(max_ahead_s=max_ahead_s),
                     observer=observer)
    op.output("write", outputs, StreamFilesSink(out_dir))
    return flow
