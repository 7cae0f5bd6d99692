"""The Bytewax replay flow end to end: contract examples, generated and real traces,
one process against two, and the promise checked from the output files alone."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from stockflow.ops.generate import Scenario, write_jsonl
from stockflow.ops.replay import replay
from stockflow.ops.summary import read_outputs
from stockflow.state.config import EngineConfig
from stockflow.state.engine import Engine
from stockflow.state.events import InputEvent, check_rules
from stockflow.state.outputs import STREAMS, AvailabilityChanged

from .invariants import audit
from .shared_data import EXAMPLES, OLIST

DECODE = msgspec.json.Decoder(InputEvent).decode


def read_events(path: Path) -> tuple[list, list[int]]:
    """Valid events in order, and the line numbers of the malformed ones (decided here,
    independently of the engine's own decoder)."""
    events, malformed = [], []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                ev = DECODE(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                malformed.append(n)
                continue
            if check_rules(ev) is None:
                events.append(ev)
            else:
                malformed.append(n)
    return events, malformed


def all_outputs(out_dir: Path) -> list:
    return [o for stream in STREAMS for o in read_outputs(out_dir, stream)]


def decisions(outputs) -> Counter:
    """Outputs as a multiset, availability aside (it is coalesced per batch)."""
    enc = msgspec.json.Encoder()
    return Counter(enc.encode(o) for o in outputs if type(o) is not AvailabilityChanged)


def final_availability(outputs) -> dict:
    return {(o.sku, o.channel): o.available for o in outputs if type(o) is AvailabilityChanged}


def nonzero(availability: dict) -> dict:
    """A (sku, channel) never published has 0: only the others say anything."""
    return {k: v for k, v in availability.items() if v}


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "events.jsonl"
    with open(path, "wb") as f:
        write_jsonl(Scenario(events=30_000, seed=11, skus=300, stores=8, malformed_rate=0.002), f)
    return path


@pytest.fixture(scope="module")
def one_process(trace, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    replay(str(trace), str(out), EngineConfig(buckets=16), processes=1, chunk_lines=1000)
    return out


def test_contract_examples_end_to_end_match_the_engine_run_directly(tmp_path):
    replay(str(EXAMPLES), str(tmp_path), EngineConfig(buckets=8))
    events, malformed = read_events(EXAMPLES)
    assert malformed == []
    flowed = all_outputs(tmp_path)
    direct = Engine(EngineConfig(buckets=8)).process(events)
    assert decisions(flowed) == decisions(direct)
    assert final_availability(flowed) == final_availability(direct)
    audit(events, flowed)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.jsonl" for s in STREAMS)


def test_generated_trace_keeps_the_promise_after_every_event(trace, one_process):
    events, _ = read_events(trace)
    outputs = all_outputs(one_process)
    auditor = audit(events, outputs)
    assert auditor.events_checked > 20_000
    assert len(auditor.command_ids) > 1_000  # the run really allocated and released


def test_exactly_the_malformed_lines_become_dead_letters(trace, one_process):
    _, malformed = read_events(trace)
    dead = read_outputs(one_process, "dead-letter")
    assert malformed, "the trace should contain malformed lines"
    assert sorted(int(d.source.rsplit(":", 1)[1]) for d in dead) == malformed
    assert all(d.error for d in dead)


def test_replaying_twice_gives_identical_files(trace, one_process, tmp_path):
    replay(str(trace), str(tmp_path), EngineConfig(buckets=16), processes=1, chunk_lines=1000)
    for stream in STREAMS:
        again = (tmp_path / f"{stream}.jsonl").read_bytes()
        assert again == (one_process / f"{stream}.jsonl").read_bytes(), stream


def test_two_processes_give_the_same_outputs_as_one(trace, one_process, tmp_path):
    replay(str(trace), str(tmp_path), EngineConfig(buckets=16), processes=2, chunk_lines=1000)
    one, two = all_outputs(one_process), all_outputs(tmp_path)
    assert decisions(two) == decisions(one)
    # Availability is coalesced per batch, and batches differ with the processes: a pair last
    # published as 0 and one never published say the same.
    assert nonzero(final_availability(two)) == nonzero(final_availability(one))


def test_every_engine_setting_reaches_the_worker_processes(trace, one_process, tmp_path):
    # A setting no command-line flag carries: the members must still decide with it.
    nearest = EngineConfig(buckets=16, sourcing_rank=("region", "distance", "whole_line", "cost"))
    replay(str(trace), str(tmp_path / "one"), nearest, processes=1, chunk_lines=1000)
    replay(str(trace), str(tmp_path / "two"), nearest, processes=2, chunk_lines=1000)
    one, two = all_outputs(tmp_path / "one"), all_outputs(tmp_path / "two")
    assert decisions(two) == decisions(one) != decisions(all_outputs(one_process))


def test_real_olist_trace_keeps_the_promise(tmp_path):
    replay(str(OLIST), str(tmp_path), EngineConfig())
    events, malformed = read_events(OLIST)
    assert malformed == []
    outputs = all_outputs(tmp_path)
    audit(events, outputs)
    statuses = {(o.order_id, o.line_id) for o in read_outputs(tmp_path, "order-status")}
    assert len(statuses) == 33_338  # every real order line got a status
