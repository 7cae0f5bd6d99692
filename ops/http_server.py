"""Serving WSGI apps over HTTP in a background thread (the standard library's server,
threaded), and /metrics for `stockflow run`: Bytewax's own (our registry plus its step
timings) passed through, ours alone while Bytewax's server is not up yet."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

# The path as the client sent it, before any %-decoding, for apps that split it first:
# WSGI's PATH_INFO is decoded already, so an encoded '/' in a SKU would split it.
RAW_PATH = "stockflow.raw_path"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds a stopping engine up
    allow_reuse_address = True


class _Handler(WSGIRequestHandler):
    def get_environ(self):
        environ = super().get_environ()
        environ[RAW_PATH] = self.path.split("?", 1)[0]
        return environ

    def log_message(self, format, *args):  # no line per request on stderr
        pass


def serve_in_background(app, host: str, port: int) -> _Server:
    """Serve `app` on host:port from a daemon thread; returns the server (`.shutdown()`).
    Raises OSError if the port is taken."""
    server = make_server(host, port, app, server_class=_Server, handler_class=_Handler)
    threading.Thread(target=server.serve_forever, name=f"http:{port}", daemon=True).start()
    return server


class BytewaxPassThrough:
    """A WSGI app answering every path from Bytewax's dataflow API server on `port`
    (/metrics, /dataflow); /metrics from our registry alone while that server is not up."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def __call__(self, environ, start_response):
        path = environ.get(RAW_PATH) or environ.get("PATH_INFO") or "/"
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as r:
                body, status = r.read(), f"{r.status} {r.reason}"
                kind = r.headers.get("Content-Type", "text/plain")
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), f"{exc.code} {exc.reason}"
            kind = exc.headers.get("Content-Type", "text/plain")
        except OSError:
            if path != "/metrics":
                body, status, kind = b"not found\n", "404 Not Found", "text/plain"
            else:
                body, status, kind = generate_latest(REGISTRY), "200 OK", CONTENT_TYPE_LATEST
        start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]
