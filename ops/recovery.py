"""The recovery store at start: which partitions this process holds, made or refused.

Bytewax spreads a store's partitions over the processes' recovery directories (one shared
volume, or a disk per host) and resumes from the snapshots they hold together. A partition
missing from its directory would be made again, empty, and its share of the state and the
input offsets would restart from nothing while the rest resumed: so a process refuses, in one
line, to start without a partition the broker's marks say was made (`recovery_marks`), and a
new store refuses output topics that already hold commands. Each process checks only its own
directory and the broker, which is cheap and needs no other host.
"""

from __future__ import annotations

import json
import socket
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
from bytewax.recovery import RecoveryConfig

from stockflow.connectors import recovery_marks, recovery_store
from stockflow.connectors.kafka_admin import (
    end_offsets,
    holds_offset,
    input_topics,
    output_topics,
)

from .config import Config

SOURCE_STEP = "stockflow_live.read"  # the step whose snapshots hold the input offsets
STARTED = "stockflow-started"  # written into a recovery directory on its first start
# A new store gets at least this many ledger buckets per process, so its cluster can grow to
# twice its size before processes outnumber buckets (and the extra ones apply no ledger).
BUCKETS_PER_PROCESS = 2


class StoreRefused(Exception):
    pass


class Shape(msgspec.Struct, frozen=True):
    """A store's partition and bucket counts: fixed for its life."""

    partitions: int
    buckets: int


def prepare(config: Config, processes: int, process_id: int | None,
            from_scratch: bool) -> tuple[RecoveryConfig, Shape]:
    """This process's recovery store, checked against the broker and made where new.

    `processes`: the cluster's size; `process_id`: None for a process that holds every
    partition (one process, or the launcher of `--processes N` on one host). Returns the
    store for Bytewax and its shape, whose buckets the engine must use. Raises StoreRefused.
    """
    path, k = Path(config.recovery.dir), config.kafka
    found = recovery_marks.read_marks(k.brokers, k.topic_prefix, k.client)
    local = recovery_store.partitions(path) if path.is_dir() else {}
    # Replayed into a new store: the marks of the old one no longer count.
    marks = {} if from_scratch and not local else found
    _refuse_mixed(path, found, local)
    shape = _shape(path, marks, local, config.engine.buckets)
    new_store = shape is None
    if new_store:
        shape = Shape(processes, max(config.engine.buckets, BUCKETS_PER_PROCESS * processes))
    outputs_at = _outputs_at(config, marks)
    if config.engine.buckets > shape.buckets:
        raise StoreRefused(
            f"refusing to start: the recovery store {path} has {shape.buckets} ledger buckets "
            f"but [engine] buckets asks for {config.engine.buckets}: buckets are fixed for a "
            "store's life; replay from the topics into a new store to have more (README, "
            "Buckets)")
    own = (range(shape.partitions) if process_id is None
           else [process_id] if process_id < shape.partitions else [])
    missing = [i for i in own if i not in local]
    if missing:
        _refuse_missing(path, missing, marks, local, own, from_scratch, config)
    _refuse_lost_broker_data(path, config)
    made = _mark(path, shape, missing, outputs_at)
    unmarked = [_mark_of(i, shape, path, outputs_at) for i in own
                if i in local and i not in marks]
    # A new store with fewer partitions than an old one: the old marks past its end go.
    gone = [i for i in found if i >= shape.partitions] if new_store and made else []
    if made or unmarked or gone:
        recovery_marks.write_marks(k.brokers, k.topic_prefix, made + unmarked, k.client,
                                   forget=gone)
    if process_id == 0 and processes > shape.buckets:
        print(f"stockflow: {processes} processes share {shape.buckets} ledger buckets: at "
              f"least {processes - shape.buckets} apply no ledger (README, Buckets)",
              file=sys.stderr)
    path.mkdir(parents=True, exist_ok=True)
    backup = config.recovery.backup_interval_s
    return RecoveryConfig(str(path), timedelta(seconds=backup) if backup else None), shape


def _shape(path: Path, marks: dict, local: dict[int, int], buckets: int) -> Shape | None:
    """The existing store's shape: from the broker's marks, else this directory's own (a
    store from before the marks recorded no buckets: the configured ones, as it ran)."""
    if marks:  # the newest: a store replayed from scratch rewrites them one host at a time
        mark = max(marks.values(), key=lambda m: m.created)
        return Shape(mark.partitions, mark.buckets)
    if local:
        try:
            started = json.loads((path / STARTED).read_text() or "{}")
        except (OSError, ValueError):
            started = {}
        return Shape(next(iter(local.values())), started.get("buckets") or buckets)
    return None


def _refuse_missing(path: Path, missing: list[int], marks: dict, local: dict,
                    own, from_scratch: bool, config: Config) -> None:
    """Partitions `missing` of this process's would be made: refused where the directory
    holds some of its others (a partial copy), where the marks say they were made (lost),
    or where the store is new but the outputs hold commands; `from_scratch` allows the last
    two, never the first (a new store starts in an empty directory)."""
    held = [i for i in own if i in local]
    if held:
        raise StoreRefused(
            f"refusing to start: the recovery store {path} holds partitions {held} but not "
            f"{missing}: restore the missing files, or move the store aside and start over "
            "with --from-scratch")
    if from_scratch:
        return
    lost = [marks[i] for i in missing if i in marks]
    if lost:
        first = lost[0]
        raise StoreRefused(
            f"refusing to start: the recovery store {path} lacks partition {first.partition} "
            f"of {first.partitions}, made on {first.created[:19]} at {first.where} (the "
            "broker's marks; it holds its share of the state and the input offsets): restore "
            "it, or replay from scratch into a new store: stop every process, move every "
            "recovery directory aside, start them all with --from-scratch")
    k = config.kafka
    written = {t: high - low for t, (low, high) in
               end_offsets(k.brokers, output_topics(k.topic_prefix), k.client).items()
               if high > low}
    if written:
        where = ", ".join(f"{t} ({n})" for t, n in sorted(written.items())[:3])
        raise StoreRefused(
            f"refusing to start: the recovery store {path} is new but the output topics "
            f"already hold commands: {where}; restore the recovery store, or pass "
            "--from-scratch to process every input again (consumers drop repeats by "
            "command id)")


def _refuse_mixed(path: Path, marks: dict, local: dict[int, int]) -> None:
    """This directory's partitions belong to another store than the newest marks (another
    host was replayed from scratch into a new store while this one kept the old)."""
    if not local or not marks:
        return
    newest = max(marks.values(), key=lambda m: m.created)
    ours = [marks[i] for i in local if i in marks]
    if newest.outputs_at < 0 or not ours or all(
            m.outputs_at in (-1, newest.outputs_at) for m in ours):
        return
    raise StoreRefused(
        f"refusing to start: the recovery store {path} holds partitions of an older store "
        f"than partition {newest.partition}, made on {newest.created[:19]} at {newest.where} "
        "(replayed from scratch?): a store mixing the two cannot resume; move this "
        "directory aside and start this process with --from-scratch too")


def _outputs_at(config: Config, marks: dict) -> int:
    """The store's `outputs_at` (see StoreMark): its newest mark's, or the output topics'
    now for a new store."""
    if marks:
        return max(marks.values(), key=lambda m: m.created).outputs_at
    k = config.kafka
    return sum(high for _, high in
               end_offsets(k.brokers, output_topics(k.topic_prefix), k.client).values())


def _refuse_lost_broker_data(path: Path, config: Config) -> None:
    """Stored offsets past the end of an input partition: the broker lost data, and resuming
    there would skip whatever is written next."""
    if not path.is_dir():
        return
    k = config.kafka
    ends = end_offsets(k.brokers, input_topics(k.topic_prefix), k.client)
    for part, offset in sorted(recovery_store.stored_offsets(path, SOURCE_STEP).items()):
        end = ends.get(part, (0, 0))[1]
        if offset > end and not holds_offset(k.brokers, part, offset - 1, k.client):
            raise StoreRefused(
                f"refusing to start: the recovery store {path} has read {part} up to offset "
                f"{offset} but the broker's partition ends at {end}: the broker lost data; "
                "restore it, or move the recovery store aside and start over")


def _mark(path: Path, shape: Shape, indexes: list[int], outputs_at: int) -> list:
    """Makes partitions `indexes` in `path`; their marks, to leave on the broker."""
    if not indexes:
        return []
    recovery_store.make_partitions(path, indexes, shape.partitions)
    (path / STARTED).write_text(json.dumps({"partitions": shape.partitions,
                                            "buckets": shape.buckets}))
    return [_mark_of(i, shape, path, outputs_at) for i in indexes]


def _mark_of(index: int, shape: Shape, path: Path, outputs_at: int):
    return recovery_marks.StoreMark(
        partition=index, partitions=shape.partitions, buckets=shape.buckets,
        outputs_at=outputs_at,
        created=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        where=f"{socket.gethostname()}:{path.resolve()}")
