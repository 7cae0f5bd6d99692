"""Worker processes that die with the process that started them (their launcher).

A launcher killed with SIGKILL cannot stop its workers: re-parented to init, they would go on
consuming, producing and writing snapshots beside the engine started next. On Linux a worker
asks the kernel for SIGKILL when its launcher dies (PR_SET_PDEATHSIG), then checks that the
launcher is still its parent: one that died before the request was made sends no signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

LAUNCHER_PID = "STOCKFLOW_LAUNCHER_PID"  # set in a worker's environment by its launcher
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class LauncherGone(RuntimeError):
    """The launcher died before this worker was tied to it."""


def launcher_env() -> dict[str, str]:
    """The environment a worker of this process is started with, so it can tie itself to
    it. The tie is to the thread that starts the worker: start workers from the main thread."""
    return {LAUNCHER_PID: str(os.getpid())}


def die_with_launcher() -> None:
    """In a worker started by a launcher (`launcher_env`): SIGKILL when the launcher dies.
    Does nothing in a process started otherwise; raises LauncherGone if it is already dead."""
    launcher = os.environ.pop(LAUNCHER_PID, None)  # not for whatever this process starts
    if launcher is None:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != int(launcher):  # it died before the request: nothing will come
        raise LauncherGone(f"the process that started this worker (pid {launcher}) is gone")
