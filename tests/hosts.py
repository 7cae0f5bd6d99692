"""stockflow hosts on loopback: one `stockflow run` process per host, each with its own
`--process-id`, the shared `--addresses` list and its own recovery directory, as on machines
that share only the broker and Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from stockflow.ops.cluster import FORMATION_FAILED, cluster_ports

from .live_runs import LiveRun


class Hosts:
    def __init__(self, run: LiveRun, count: int = 2):
        self.run = run
        self.count = count
        self.dirs = [run.workdir / f"host-{i}" / "recovery" for i in range(8)]
        self.logs: list = [None] * 8

    def start_one(self, i: int, addresses: str, *args: str) -> subprocess.Popen:
        """Host i's `stockflow run -i i -a addresses [args]`."""
        self.logs[i] = open(self.run.workdir / f"host-{i}-{time.monotonic_ns()}.log", "w+b")
        env = {**self.run.env, "STOCKFLOW_RECOVERY_DIR": str(self.dirs[i])}
        return subprocess.Popen(
            [sys.executable, "-m", "stockflow.ops.cli", "run", "-i", str(i), "-a", addresses,
             *args], env=env, stdout=self.logs[i], stderr=subprocess.STDOUT)

    def start(self, *args: str) -> list[subprocess.Popen]:
        """Every host, on fresh ports."""
        addresses = ";".join(f"127.0.0.1:{p}" for p in cluster_ports(self.count))
        return [self.start_one(i, addresses, *args) for i in range(self.count)]

    def drain(self, *args: str, timeout: float = 120) -> None:
        """Every host until the input topics are consumed; once more on fresh ports if a
        port was taken before it was bound."""
        for attempt in (1, 2):
            codes = wait_all(self.start("--drain", *args), timeout)
            if FORMATION_FAILED in codes and attempt == 1:
                continue
            assert codes == [0] * self.count, (codes, self.log(0)[-3000:], self.log(1)[-3000:])
            return

    def log(self, i: int) -> str:
        self.logs[i].flush()
        self.logs[i].seek(0)
        return self.logs[i].read().decode("utf-8", "replace")

    def last_line(self, i: int) -> str:
        return self.log(i).strip().splitlines()[-1]


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    """Exit codes; once one fails the other gets SIGTERM (and SIGKILL 3 s later): a member
    still waiting to reach its peer never ends by itself. Past `timeout`, both are killed."""
    deadline = time.monotonic() + timeout
    while None in (codes := [p.poll() for p in procs]):
        if time.monotonic() > deadline:
            for p in procs:
                p.kill()
            break
        if any(c not in (None, 0) for c in codes):
            break
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return [p.returncode for p in procs]
