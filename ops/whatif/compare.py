"""Replays one trace under each policy, one after another in this process, and summarizes
each run's decisions for a side-by-side comparison."""

from __future__ import annotations

import os
import tempfile

import msgspec

from stockflow.ops.replay import replay
from stockflow.ops.summary import Summary, summarize
from stockflow.state.config import EngineConfig
from stockflow.state.supply_side import SupplySideSettings

from .closed_loop import SupplyMode, close_loop
from .policy import NamedPolicy, PolicyError, check_names
from .rewrite import read_facts, rewrite

AS_RECORDED = "as recorded"


class Column(msgspec.Struct, kw_only=True):
    name: str  # the policy file's stem, or "as recorded"
    policy: str | None  # the policy file; None for the trace as recorded
    engine: EngineConfig
    events_changed: int  # trace events the policy rewrote or added
    # closed loop: events the simulated supply side sent, trace events it spoke for instead
    answers: int = 0
    left_out: int = 0
    summary: Summary


def compare(trace: str, policies: list[NamedPolicy], work_dir: str | None = None,
            show_progress: bool = True, recorded: bool = True,
            supply: SupplyMode | None = None) -> list[Column]:
    """One column per policy, after the trace as recorded (engine defaults) unless not
    `recorded`: every policy is read against what happened. With `supply` each run is a
    closed loop (closed_loop.py: "recorded" keeps the trace's own receipts, "simulated"
    leaves them out), the as-recorded one under the default supply side.

    Each run's events and outputs go under `work_dir/<name>/` (a temporary directory,
    removed afterwards, when None).
    """
    names = [p.name for p in policies]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise PolicyError(f"two policies are named {twice[0]!r}: columns need distinct file names")
    if not os.path.isfile(trace):
        raise PolicyError(f"no such trace file: {trace}")
    facts = read_facts(trace)
    for named in policies:
        check_names(named, facts.channels, facts.nodes)
    runs: list[NamedPolicy | None] = [None, *policies] if recorded else list(policies)
    if work_dir is not None:
        return [_run(trace, named, facts, work_dir, show_progress, supply) for named in runs]
    with tempfile.TemporaryDirectory(prefix="stockflow-whatif-") as tmp:
        return [_run(trace, named, facts, tmp, show_progress, supply) for named in runs]


def _run(trace: str, named: NamedPolicy | None, facts, work_dir: str,
         show_progress: bool, supply: SupplyMode | None) -> Column:
    name = AS_RECORDED if named is None else named.name
    here = os.path.join(work_dir, name.replace(" ", "-"))
    os.makedirs(here, exist_ok=True)
    events, changed = trace, 0
    if named is not None and named.policy.changes_events():
        events = os.path.join(here, "events.jsonl")
        with open(events, "wb") as f:
            changed = rewrite(trace, named.policy, facts, f)
    config = EngineConfig() if named is None else named.policy.engine_config()
    answers = left_out = 0
    if supply is not None:  # the input as the loop applied it is what the replay reads
        side = SupplySideSettings() if named is None else named.policy.supply_side
        looped = os.path.join(here, "closed-loop.jsonl")
        with open(looped, "wb") as f:
            counts = close_loop(events, f, config, side, supply)
        events, answers, left_out = looped, counts.answers, counts.left_out
    out = os.path.join(here, "out")
    seconds = replay(events, out, config, show_progress=show_progress)
    return Column(name=name, policy=None if named is None else named.path, engine=config,
                  events_changed=changed, answers=answers, left_out=left_out,
                  summary=summarize(events, out, seconds))
