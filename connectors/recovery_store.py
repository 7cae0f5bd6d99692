"""Bytewax's recovery store (SQLite files) from outside the flow, before a start.

Used to check that the store and the broker agree and to make a process's own partitions;
Bytewax itself writes and resumes them.
"""

from __future__ import annotations

import pickle
import shutil
import sqlite3
import tempfile
from pathlib import Path

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


def _rows(directory: str | Path, query: str, params: tuple):
    for path in sorted(Path(directory).glob("part-*.sqlite3")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            yield from db.execute(query, params)
        except sqlite3.OperationalError:  # not initialised yet: nothing stored
            pass
        finally:
            db.close()
