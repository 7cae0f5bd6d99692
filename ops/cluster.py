"""A Bytewax cluster of stockflow processes: the ports its members listen on, and
`stockflow run --processes N`, which starts N members on this host.

A cluster is formed when every member listens on its address and has reached the others. A
port found free can be taken before its member binds it: outgoing connections (Kafka, Redis)
take ephemeral ports, so ours are chosen below that range, and a member that cannot bind
exits with FORMATION_FAILED, so the launcher tries once more with fresh ports.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import sys

from .workers import Workers

log = logging.getLogger(__name__)

FORMATION_FAILED = 75  # EX_TEMPFAIL: a member could not listen on its address
_PORTS = (20000, 32000)  # below Linux's ephemeral range (32768-60999)


class ClusterError(Exception):
    pass


class FormationFailed(ClusterError):
    """A member could not listen on its address: the cluster never formed."""


def cluster_ports(n: int) -> list[int]:
    """`n` loopback ports free now, outside the range outgoing connections are given."""
    rnd = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < n:
        port = rnd.randrange(*_PORTS)
        if port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


def formation_failure(exc: BaseException) -> bool:
    """Whether Bytewax failed before the cluster formed because an address was taken."""
    return "failed to initialize networking" in str(exc)


def run_local(processes: int, args: list[str], env: dict[str, str] | None = None,
              pass_fds: tuple[int, ...] = ()) -> None:
    """`stockflow run [args]` as `processes` members on loopback (`env` over this process's
    environment, `pass_fds` held open by them), until they all stop; one that fails stops the
    others (a cluster cannot go on without a member), and a stop of this process is passed
    on to them (ops/workers.py)."""
    for attempt in (1, 2):
        addresses = ";".join(f"127.0.0.1:{p}" for p in cluster_ports(processes))
        base = [sys.executable, "-m", "stockflow.ops.cli", "run", "--addresses", addresses,
                *args]
        members = Workers([base + ["--process-id", str(i)] for i in range(processes)],
                          {**os.environ, **(env or {})}, pass_fds)
        codes = members.wait(unformed=FORMATION_FAILED)
        if attempt == 1 and FORMATION_FAILED in codes and members.stopped_by is None:
            log.warning("cluster_retry", extra={
                "why": "a cluster port was taken before it was bound", "next": "fresh ports"})
            continue
        if any(c not in (0, 130) for c in codes):
            raise ClusterError(f"a worker process failed (exit codes {codes})")
        return
