"""Opening Redis: one server or a Redis Cluster, as the settings say, and checked to be so.

Pointing a plain client at a cluster node works until the first key of another node (MOVED),
and a cluster client at a plain Redis fails on its first command: both are configuration
mistakes, so `connect` finds them before anything is written and says so in one line
(`RedisRefused`), instead of an engine that counts MOVED errors as outages.
"""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException


class RedisRefused(RuntimeError):
    """Redis answered with an error that retrying cannot fix: the engine stops, saying it."""


def is_cluster(client) -> bool:
    return isinstance(client, RedisCluster)


def connect(url: str, cluster: bool = False, timeout_s: float = 1.0):
    """A client for `url`: `redis.Redis`, or `RedisCluster` with `cluster`. Raises
    RedisRefused when the server is not what `cluster` says, redis.ConnectionError when it
    cannot be reached."""
    options = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if not cluster:
        client = redis.Redis.from_url(url, **options)
        if client.info("cluster").get("cluster_enabled"):
            raise RedisRefused(f"Redis at {url} is a Redis Cluster node: set [redis] cluster = "
                               "true (STOCKFLOW_REDIS_CLUSTER=true)")
        return client
    try:
        client = RedisCluster.from_url(url, **options)
    except RedisClusterException as exc:
        if "Cluster mode is not enabled" in str(exc):
            raise RedisRefused(f"Redis at {url} is not a Redis Cluster: set [redis] cluster = "
                               "false (STOCKFLOW_REDIS_CLUSTER=false)") from None
        raise redis.ConnectionError(str(exc.__cause__ or exc)) from None
    _fcall_keys_from_arguments(client)
    return client


def _fcall_keys_from_arguments(client: RedisCluster) -> None:
    """redis-py finds an FCALL's slot by asking the server (COMMAND GETKEYS) before every
    call: one more round trip per reservation and per SKU of the engine's pipelines. FCALL
    names its keys itself (`FCALL name numkeys key...`), so read them from the arguments."""
    parser = client.commands_parser
    ask_server = parser.get_keys

    def get_keys(connection, *args):
        if str(args[0]).upper() in ("FCALL", "FCALL_RO"):
            return list(args[3:3 + int(args[2])])
        return ask_server(connection, *args)

    parser.get_keys = get_keys
