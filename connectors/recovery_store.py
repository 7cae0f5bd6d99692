"""Bytewax's recovery store (SQLite files) from outside the flow, before a start.

Used to check that the store and the broker agree, to say where a start resumes, and to
make a process's own partitions; Bytewax itself writes and resumes them.
"""

from __future__ import annotations

import pickle
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import NamedTuple

from bytewax.recovery import init_db_dir


def partitions(directory: str | Path) -> dict[int, int]:
    """The recovery partitions in `directory`: index -> the store's partition count."""
    return dict(_rows(directory, "SELECT part_index, part_count FROM parts", ()))


def make_partitions(directory: str | Path, indexes: list[int], count: int) -> None:
    """Partitions `indexes` of a store of `count`, new, in `directory` (and no others: on
    separate hosts each process holds its own, and the cluster must find each exactly once)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".new-") as scratch:
        init_db_dir(Path(scratch), count)
        for i in indexes:
            shutil.move(Path(scratch) / f"part-{i}.sqlite3", directory / f"part-{i}.sqlite3")


def stored_offsets(directory: str | Path, step_id: str) -> dict[str, int]:
    """The highest next-offset any snapshot of source step `step_id` holds, per partition."""
    offsets: dict[str, int] = {}
    query = "SELECT state_key, ser_change FROM snaps WHERE step_id = ?"
    for key, blob in _rows(directory, query, (step_id,)):
        offset = pickle.loads(blob) if blob is not None else None
        if isinstance(offset, int) and offset > offsets.get(key, -1):
            offsets[key] = offset
    return offsets


class ResumePoint(NamedTuple):
    """Where a start resumes: Bytewax's resume epoch (None: from scratch) and, per input
    partition with a snapshot before it, the offset read next."""

    epoch: int | None
    offsets: dict[str, int]


def resume_point(directory: str | Path, step_id: str) -> ResumePoint:
    """The epoch Bytewax resumes at, as it computes it: the last execution's slowest worker
    frontier (a worker that recorded none is still at that execution's resume epoch); and
    the offsets source step `step_id` snapshotted before that epoch."""
    executions = list(_rows(directory, "SELECT ex_num, worker_count, resume_epoch FROM exs", ()))
    if not executions:
        return ResumePoint(None, {})
    ex, workers, epoch = max(executions)
    frontier = dict.fromkeys(range(workers), epoch)
    query = "SELECT worker_index, worker_frontier FROM fronts WHERE ex_num = ?"
    for worker, front in _rows(directory, query, (ex,)):
        frontier[worker] = max(frontier.get(worker, epoch), front)
    resume = min(frontier.values())
    if not any(True for _ in _rows(directory, "SELECT 1 FROM snaps WHERE snap_epoch < ? "
                                              "LIMIT 1", (resume,))):
        return ResumePoint(None, {})  # nothing to restore: this start is from scratch
    latest: dict[str, tuple[int, bytes | None]] = {}
    query = ("SELECT state_key, snap_epoch, ser_change FROM snaps "
             "WHERE step_id = ? AND snap_epoch < ?")
    for key, snap_epoch, blob in _rows(directory, query, (step_id, resume)):
        if snap_epoch > latest.get(key, (-1, None))[0]:
            latest[key] = (snap_epoch, blob)
    offsets = {key: pickle.loads(blob) for key, (_, blob) in sorted(latest.items())
               if blob is not None}
    return ResumePoint(resume, {key: n for key, n in offsets.items() if isinstance(n, int)})


def _rows(directory: str | Path, query: str, params: tuple):
    for path in sorted(Path(directory).glob("part-*.sqlite3")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            yield from db.execute(query, params)
        except sqlite3.OperationalError:  # not initialised yet: nothing stored
            pass
        finally:
            db.close()


def last_snapshot(directory: str | Path) -> tuple[int, str] | None:
    """(epoch, UTC time 'YYYY-MM-DD HH:MM:SS') of the newest snapshot in the store; None if
    it holds none. Bytewax stamps every row it writes; the newest epoch is the one a restart
    resumes from (or the one after it, once committed)."""
    newest = None
    for epoch, at in _rows(directory, "SELECT max(snap_epoch), max(created_at) FROM snaps", ()):
        if epoch is not None and (newest is None or (epoch, at) > newest):
            newest = (epoch, at)
    return newest
