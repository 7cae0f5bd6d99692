"""The demo: generate a scenario, replay it on the embedded default, summarize the decisions."""

from __future__ import annotations

import os
import sys

from stockflow.state.config import EngineConfig

from .generate import Scenario, write_jsonl
from .progress import progress
from .replay import replay
from .report import print_summary
from .summary import summarize


def run_demo(scenario: Scenario, config: EngineConfig, out_dir: str, chunk_lines: int,
             as_json: bool = False, show_progress: bool = True) -> None:
    os.makedirs(out_dir, exist_ok=True)
    trace = os.path.join(out_dir, "events.jsonl")
    with open(trace, "wb") as f, progress("generating", scenario.events, "events",
                                          show_progress and not as_json) as advance:
        n = write_jsonl(scenario, f, advance)
    if not as_json:
        print(f"generated {n:,} events (seed {scenario.seed}) -> {trace}", file=sys.stderr)
    outputs = os.path.join(out_dir, "out")
    seconds = replay(trace, outputs, config, 1, chunk_lines,
                     show_progress=show_progress and not as_json)
    print_summary(summarize(trace, outputs, seconds), as_json=as_json)
    if not as_json:
        print(f"outputs: {outputs}/<stream>.jsonl", file=sys.stderr)
