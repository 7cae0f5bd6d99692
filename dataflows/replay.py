"""Replay: a JSON Lines file (or stdin) through the engine into one file per output stream."""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from stockflow.connectors.files import CHUNK_LINES, JsonLinesSource, StreamFilesSink
from stockflow.state.config import EngineConfig

from .engine import engine


def replay_flow(events_path: str, out_dir: str, config: EngineConfig,
                chunk_lines: int = CHUNK_LINES, observer=None, on_read=None) -> Dataflow:
    flow = Dataflow("stockflow_replay")
    raw = op.input("read", flow, JsonLinesSource(events_path, chunk_lines, on_read))
    outputs = engine(raw, config, observer=observer)
    op.output("write", outputs, StreamFilesSink(out_dir))
    return flow
