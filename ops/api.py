"""The read-only HTTP API: JSON answers from the engine's read model in Redis.

    GET /v1/health
    GET /v1/skus/{sku}/availability              every channel's availability, max_line_qty
    GET /v1/skus/{sku}/availability/{channel}
    GET /v1/skus/{sku}/positions                 every node's position
    GET /v1/skus/{sku}/positions/{node}

A WSGI app, so `stockflow run` serves it next to /metrics and `stockflow api` alone. Unknown
SKUs, channels, nodes and routes are 404 with {"error": ...}; nothing here writes.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from urllib.parse import unquote

import redis

from stockflow.connectors.read_model_reader import ReadModelReader

from .config import load
from .health import EngineHealth
from .http_server import RAW_PATH, serve_in_background
from .masking import mask, masked_url
from .sku_view import availability_json, channels_json, position_json

ROUTES = ("/v1/health", "/v1/skus/{sku}/availability", "/v1/skus/{sku}/availability/{channel}",
          "/v1/skus/{sku}/positions", "/v1/skus/{sku}/positions/{node}")


class NotFound(Exception):
    pass


class ReadApi:
    """The /v1 routes; anything else goes to `fallback` (a WSGI app) if given, else 404."""

    def __init__(self, reader: ReadModelReader, health: EngineHealth, fallback=None):
        self.reader = reader
        self.health = health
        self.fallback = fallback

    def __call__(self, environ, start_response):
        path = environ.get(RAW_PATH) or _utf8(environ.get("PATH_INFO") or "/")
        if not path.startswith("/v1/") and self.fallback is not None:
            return self.fallback(environ, start_response)
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, 405, {"error": "read-only API: GET only"})
        try:
            status, body = self.answer(path)
        except NotFound as exc:
            status, body = 404, {"error": str(exc)}
        except redis.RedisError as exc:
            status, body = 503, {"error": f"cannot read the read model in Redis: {exc}"}
        return _json(start_response, status, body)

    def answer(self, path: str) -> tuple[int, dict]:
        """(status, body) for a GET of `path` (still %-encoded if the server passes it raw:
        split first, so a SKU may hold an encoded '/')."""
        parts = [unquote(p) for p in path.split("/")[1:]]
        match parts:
            case ["v1", "health"]:
                fresh, body = self.health.report()
                return (200 if fresh else 503), body
            case ["v1", "skus", sku, "availability"]:
                return 200, channels_json(self._sku(sku))
            case ["v1", "skus", sku, "availability", channel]:
                report = self._sku(sku)
                if channel not in report.available:
                    raise NotFound(f"no channel {channel!r} in the read model of SKU {sku!r}")
                return 200, availability_json(report, channel)
            case ["v1", "skus", sku, "positions"]:
                report = self._sku(sku)
                return 200, {"sku": sku, "positions": [
                    position_json(sku, n, p) for n, p in sorted(report.positions.items())]}
            case ["v1", "skus", sku, "positions", node]:
                report = self._sku(sku)
                if node not in report.positions:
                    raise NotFound(f"no node {node!r} in the read model of SKU {sku!r}")
                return 200, position_json(sku, node, report.positions[node])
        raise NotFound(f"no route {path}; routes: {', '.join(ROUTES)}")

    def _sku(self, sku: str):
        report = self.reader.sku(sku)
        if report is None:
            raise NotFound(f"unknown SKU {sku!r}: the engine has published nothing for it")
        return report


def _utf8(path_info: str) -> str:
    """PATH_INFO is bytes read as latin-1 (PEP 3333); re-encoded, so unquote finds nothing
    left to decode but what was sent as %25."""
    return path_info.encode("latin-1").decode("utf-8", "replace").replace("%", "%25")


def _json(start_response, status: int, body: dict):
    data = mask(json.dumps(body)).encode()  # a library's error may repeat a credential
    start_response(f"{status} {_REASONS[status]}", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(data))),
        ("Cache-Control", "no-store")])
    return [data]


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


def serve_api(config_path: str | None, host: str, port: int) -> None:
    """`stockflow api`: the routes alone, from Redis, until SIGTERM or Ctrl-C. Health says the
    heartbeat only: input lag and snapshots are known where the engine runs."""
    from .live import redis_client

    config = load(config_path)
    try:
        client = redis_client(config)
    except redis.RedisError as exc:
        raise RuntimeError(f"cannot reach Redis at {masked_url(config.redis.url)}: "
                           f"{exc}") from None
    reader = ReadModelReader(client, config.redis.prefix, config.redis.heartbeat_stale_s)
    try:
        server = serve_in_background(ReadApi(reader, EngineHealth(reader)), host, port)
    except OSError as exc:
        raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"stockflow api: serving http://{host}:{port}/v1/ from "
          f"{masked_url(config.redis.url)}",
          file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
