"""A real HTTP server on 127.0.0.1, in a thread, with routes declared as a table.

Each fake API (Reddit, X, App Store) is a :class:`FakeServer` with a route
table of ``(method, path regex, handler)``. Faults are queued with
:meth:`FakeServer.fail_next`: the next request whose path matches gets the
fault instead of the route's answer (429 with ``Retry-After``, 500, a slow
answer, malformed JSON, a truncated body, a dropped connection). Every request
is logged for assertions. ``latency`` paces every answer like a distant API
(benchmarks).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FakeServer", "Reply", "Request", "Route"]


@dataclass
class Request:
    """A request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """What the fake answers.

    ``body`` may be bytes, text, or JSON-able data. ``delay`` sleeps before
    answering (a slow server). ``truncate`` announces the full length, sends
    half the body and closes the connection.
    """

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False
    #: Answer as the route would, after ``delay`` (a slow but correct server).
    passthrough: bool = False

    def payload(self) -> bytes:
        """The body as bytes; data is sent as JSON."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


Handler = Callable[[Request, "re.Match[str]"], Reply]
Route = tuple[str, str, Handler]


# Faults every fake understands, by name.
def fault(kind: str, **kw: Any) -> Reply:
    """A canned fault: ``429``, ``500``, ``slow``, ``malformed``, ``truncated``, ``html``.

    ``slow`` answers correctly but late: only a client with a timeout retries.
    """
    if kind == "429":
        return Reply(429, {"error": "rate limited"}, {"Retry-After": str(kw.get("retry_after", 1))})
    if kind == "500":
        return Reply(500, {"error": "boom"})
    if kind == "slow":
        return Reply(delay=kw.get("delay", 1.5), passthrough=True)
    if kind == "malformed":
        return Reply(200, b'{"data": {"children": [', {"Content-Type": "application/json"})
    if kind == "truncated":
        body = {"data": {"children": [], "after": None}, "pad": "x" * 200}
        return Reply(200, body, truncate=True)
    if kind == "html":
        return Reply(
            200, b"<html><body>Service unavailable</body></html>", {"Content-Type": "text/html"}
        )
    raise ValueError(f"unknown fault {kind!r}")


class FakeServer:
    """A threaded HTTP server on an ephemeral port of 127.0.0.1."""

    def __init__(
        self,
        routes: list[Route],
        default_headers: dict[str, str] | None = None,
        *,
        latency: float = 0.0,
    ) -> None:
        """Declare the routes; nothing listens until :meth:`start`.

        Args:
            routes: ``(method, path regex, handler)``; the first full match answers.
            default_headers: Headers of every answer.
            latency: Seconds every answer waits before it is sent, as a real API's
                round trip would (on top of a fault's own delay); settable later.
        """
        self.routes = [(m, re.compile(p), h) for m, p, h in routes]
        self.default_headers = default_headers or {}
        self.latency = latency
        self.log: list[Request] = []
        self._faults: list[tuple[re.Pattern[str], Reply]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeServer:
        """Start serving in a daemon thread."""
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                server._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                server._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def reset(self) -> None:
        """Forget faults and the request log."""
        with self._lock:
            self._faults.clear()
            self.log.clear()

    def fail_next(self, path_pattern: str, *replies: Reply) -> None:
        """Answer the next requests whose path matches with ``replies``, in order."""
        with self._lock:
            self._faults.extend((re.compile(path_pattern), r) for r in replies)

    def requests_to(self, path_pattern: str) -> list[Request]:
        """Logged requests whose path matches."""
        rx = re.compile(path_pattern)
        with self._lock:
            return [r for r in self.log if rx.search(r.path)]

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Request(
            method,
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            {k.lower(): v for k, v in h.headers.items()},
            body,
        )
        reply = None
        with self._lock:
            self.log.append(req)
            for i, (rx, _reply) in enumerate(self._faults):
                if rx.search(req.path):
                    reply = self._faults.pop(i)[1]
                    break
        if reply is None:
            reply = self._route(req)
        elif reply.passthrough:
            slow = self._route(req)
            slow.delay = reply.delay
            reply = slow
        self._send(h, reply)

    def _route(self, req: Request) -> Reply:
        for method, rx, handler in self.routes:
            match = rx.fullmatch(req.path)
            if method == req.method and match:
                return handler(req, match)
        return Reply(404, {"error": "not found", "path": req.path})

    def _send(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.delay or self.latency:
            time.sleep(reply.delay + self.latency)
        data = reply.payload()
        headers = {"Content-Type": "application/json; charset=utf-8", **self.default_headers}
        headers.update(reply.headers)
        try:
            h.send_response(reply.status)
            for key, value in headers.items():
                h.send_header(key, value)
            h.send_header("Content-Length", str(len(data)))
            # Say so when closing (the request asked, e.g. prawcore's token call, or a
            # truncated body): a client that is not told may reuse the dead socket.
            if reply.truncate or h.close_connection:
                h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(data[: len(data) // 2] if reply.truncate else data)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
        if reply.truncate:
            h.close_connection = True
