"""Session fixtures: the real servers tests talk to."""

from __future__ import annotations

import os

import pytest

from .servers import RedisClusterServers, check_redis, start_tansu


@pytest.fixture(scope="session")
def kafka_brokers():
    """`host:port` of a tansu broker (in memory) started for this test session."""
    tansu = start_tansu()
    yield tansu.brokers
    tansu.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a running Redis: `$REDIS_URL`, else the local default."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    check_redis(url)
    return url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory) -> RedisClusterServers:
    """A 3-primary Redis Cluster of our own (nothing on disk), torn down after the session."""
    servers = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    yield servers
    servers.stop()


def pytest_addoption(parser):
    parser.addoption("--faults", choices=["quick", "full"], default="quick",
                     help="fault drills: quick (in every test run) or full (`make faults`)")
    parser.addoption("--faults-out", default=None,
                     help="also write the fault drills' figures to this JSON file")
