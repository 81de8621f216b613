"""A fault-injecting HTTP proxy to put in front of SeaweedFS: S3 that throttles, fails and drops.

Requests are forwarded byte for byte, the `Host` header included, so SigV4 signatures made for the
proxy's address still verify upstream. Rules pick requests (method, a substring of the path, every
n-th match) and answer them with a fault instead:
- `slowdown`: 503 SlowDown, as S3 throttles; `error`: 500 InternalError;
- `drop`: the connection is closed before any answer;
- `lose_answer`: the request reaches S3 and takes effect, then the connection is closed, so the client
  never learns that it succeeded (its retry of a conditional write then fails its own condition).
No library offers this for S3 in-process (toxiproxy needs its Go server and knows no S3 errors).
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = {"slowdown": (503, "SlowDown", "Please reduce your request rate."),
          "error": (500, "InternalError", "We encountered an internal error. Please try again.")}


@dataclass
class Rule:
    action: str  # slowdown | error | drop | lose_answer, or a list rotated through via `actions`
    method: str | None = None
    path_contains: str | None = None
    every: int = 1  # the n-th, 2n-th ... matching request
    times: int | None = None  # at most this many faults (None: no limit)
    actions: tuple[str, ...] = ()  # rotate through these instead of `action`
    matched: int = 0
    fired: int = 0

    def pick(self, method: str, path: str) -> str | None:
        if (self.method and method != self.method) or (self.path_contains and self.path_contains not in path):
            return None
        self.matched += 1
        if self.matched % self.every or (self.times is not None and self.fired >= self.times):
            return None
        action = self.actions[self.fired % len(self.actions)] if self.actions else self.action
        self.fired += 1
        return action


@dataclass
class FaultProxy:
    upstream: str  # http://host:port of the real S3
    rules: list[Rule] = field(default_factory=list)
    faults: Counter = field(default_factory=Counter)
    requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each answer's body waits for a delayed ACK

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                action = proxy._decide(self.command, self.path)
                if action in FAULTS:
                    status, code, message = FAULTS[action]
                    xml = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                           f"<Message>{message}</Message></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(xml)))
                    self.end_headers()
                    self.wfile.write(xml)
                    return
                if action == "drop":
                    return self._drop()
                status, headers, answer = proxy._forward(self.command, self.path, dict(self.headers.items()), body)
                if action == "lose_answer":
                    return self._drop()
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer)

            def _drop(self) -> None:
                self.close_connection = True
                self.connection.shutdown(2)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _decide(self, method: str, path: str) -> str | None:
        with self._lock:
            self.requests += 1
            for rule in self.rules:
                action = rule.pick(method, path)
                if action:
                    self.faults[action] += 1
                    return action
        return None

    def _forward(self, method: str, path: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        url = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
