"""The worker processes of a launcher (`run --processes N`, `replay --processes N`): started
tied to it, told of a stop, waited for.

Each worker runs in a process group of its own, so a Ctrl-C at the terminal or a signal to the
launcher's group reaches the launcher alone, and each worker is told once, by the launcher
(told twice, a live worker would force its stop). A worker dies with its launcher whatever
kills it (`parent_death`); the launcher forwards SIGTERM and SIGINT to its workers and waits
for them to wind down.
"""

from __future__ import annotations

import signal
import subprocess
import time

from . import parent_death

FORWARDED = (signal.SIGTERM, signal.SIGINT)


class Workers:
    """Worker processes of this one, running `commands` with `env`; `pass_fds`: files they
    hold open with the launcher (the recovery directory's lock lasts until the last exits)."""

    def __init__(self, commands: list[list[str]], env: dict[str, str],
                 pass_fds: tuple[int, ...] = ()):
        self.stopped_by: int | None = None  # the first signal forwarded
        self._procs: list[subprocess.Popen] = []
        # Before the first worker starts: a signal from now on reaches every worker started.
        self._previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED}
        try:
            for command in commands:
                self._procs.append(subprocess.Popen(
                    command, env={**env, **parent_death.launcher_env()}, pass_fds=pass_fds,
                    process_group=0, stdin=subprocess.DEVNULL))
        except BaseException:
            self._stop(0.0)
            self._restore()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def wait(self, unformed: int | None = None, grace_s: float = 15.0,
             unformed_s: float = 2.0) -> list[int]:
        """Exit codes of every worker. One failing stops the others with SIGTERM, then SIGKILL
        after `grace_s` (a worker waiting to reach a peer checks for signals only once the
        cluster formed), or after `unformed_s` if one exited with `unformed` (the cluster
        never formed: nothing to finish). After a forwarded stop, a worker still running
        `grace_s` later is killed (each forces its own stop well before)."""
        try:
            killed_at = None
            while None in (codes := [p.poll() for p in self._procs]):
                if self.stopped_by is not None:  # told: each winds down, or forces its stop
                    killed_at = killed_at or time.monotonic() + grace_s
                    if time.monotonic() > killed_at:
                        self._stop(0.0)
                        break
                elif any(c not in (None, 0) for c in codes):
                    self._stop(unformed_s if unformed in codes else grace_s)
                    break
                time.sleep(0.05)
            return [p.wait() for p in self._procs]
        finally:
            self._restore()

    def _forward(self, signum, frame) -> None:
        if self.stopped_by is None:
            self.stopped_by = signum
        for p in self._procs:
            if p.poll() is None:
                p.send_signal(signum)

    def _stop(self, grace_s: float) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in self._procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
