"""One engine per recovery directory: a lock held for the engine's life.

Two engines on one recovery store would both consume the same partitions and overwrite each
other's snapshots. The engine that holds every partition of its directory (one process, or the
launcher of `--processes N`) takes an flock on a file in it; its workers inherit the open file,
so the lock is free only once the last process of the engine has exited, whatever killed it.
Processes of a cluster started one by one (`--process-id`) take none: their directories may
be one shared volume.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = "engine.lock"


class EngineRunning(Exception):
    """Another engine holds the recovery directory."""


@contextlib.contextmanager
def held(directory: str, wait_s: float = 2.0) -> Iterator[int]:
    """The lock on `directory` (made if missing), held inside the block; yields its file
    descriptor, for worker processes to inherit. Waits `wait_s` for an engine that is
    still exiting, then raises EngineRunning."""
    path = Path(directory) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _take(fd, path, time.monotonic() + wait_s)
        os.ftruncate(fd, 0)  # who holds it, for the next one refused
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)  # the lock goes with the last descriptor of this open file


def _take(fd: int, path: Path, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise EngineRunning(
                    f"refusing to start: another engine is running on the recovery store "
                    f"{path.parent} (pid {holder} holds {path}); stop it first") from None
            time.sleep(0.05)
