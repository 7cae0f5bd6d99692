"""Reading Bytewax's recovery store (SQLite files) from outside the flow, before a start.

Used only to check that the store and the broker agree; Bytewax itself writes and resumes it.
"""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path


def is_empty(directory: str | Path) -> bool:
    """Whether the store holds no snapshot at all (new, or never got past its first epoch)."""
    return not any(True for _ in _rows(directory, "SELECT 1 FROM snaps LIMIT 1", ()))


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


def last_snapshot(directory: str | Path) -> tuple[int, str] | None:
    """(epoch, UTC time 'YYYY-MM-DD HH:MM:SS') of the newest snapshot in the store; None if
    it holds none. Bytewax stamps every row it writes; the newest epoch is the one a restart
    resumes from (or the one after it, once committed)."""
    newest = None
    for epoch, at in _rows(directory, "SELECT max(snap_epoch), max(created_at) FROM snaps", ()):
        if epoch is not None and (newest is None or (epoch, at) > newest):
            newest = (epoch, at)
    return newest
