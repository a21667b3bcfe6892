"""A reverse proxy for tests in front of a real registry: it logs every request, injects faults
(statuses, dropped connections, truncated or corrupted bodies) and can act as a bearer-token
registry with its own token server issuing scope-bound tokens."""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import secrets
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_REPO_PATH = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags)/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
_CHUNK = 1 << 16


@dataclass
class Fault:
    """Do `action` to the next `times` requests matching `method` and the `path` regex.

    Actions: "status" (answer `status` with `headers`, such as a redirect's Location, without
    forwarding), "drop_request" (read part of
    the request body, then close the connection), "drop_response" (forward, then close
    without answering), "truncate" (forward, send half the body, close), "corrupt" (forward,
    flip bytes of the body).
    """

    method: str
    path: str
    action: str
    times: int = 1
    status: int = 500
    retry_after: str | None = None
    skip: int = 0  # let this many matching requests through first
    hits: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if method != self.method or not re.search(self.path, path):
            return False
        self.hits += 1
        return self.skip < self.hits <= self.skip + self.times


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    status: int
    repository: str
    token_repositories: frozenset[str] | None  # repos the presented token was issued for


@dataclass
class TokenAuth:
    """Bearer auth with our token server: users and the tokens issued, with their scopes."""

    users: dict[str, str]
    service: str = "polybuild-test"
    tokens: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    issued: list[tuple[str, ...]] = field(default_factory=list)


class Proxy:
    """Start with `with Proxy(upstream) as proxy:`; `proxy.host` is `127.0.0.1:PORT`."""

    def __init__(self, upstream: str, *, auth: TokenAuth | None = None) -> None:
        self.upstream = upstream
        self.auth = auth
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fault(self, method: str, path: str, action: str, **kwargs: object) -> Fault:
        fault = Fault(method, path, action, **kwargs)  # type: ignore[arg-type]
        with self.lock:
            self.faults.append(fault)
        return fault

    def count(self, method: str, path: str = "") -> int:
        with self.lock:
            return sum(1 for e in self.log if e.method == method and re.search(path, e.path))

    def reset(self) -> None:
        with self.lock:
            self.log.clear()
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            return next((f for f in self.faults if f.matches(method, path)), None)

    def _record(self, entry: Logged) -> None:
        with self.lock:
            self.log.append(entry)


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._handle()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        # ---- plumbing -------------------------------------------------------------------

        def _body_chunks(self, limit: int | None = None) -> Iterator[bytes]:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                yield self._read_chunked()
                return
            remaining = int(self.headers.get("Content-Length") or 0)
            if limit is not None:
                remaining = min(remaining, limit)
            while remaining:
                data = self.rfile.read(min(_CHUNK, remaining))
                if not data:
                    return
                remaining -= len(data)
                yield data

        def _read_chunked(self) -> bytes:
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()

        def _reply(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        # ---- auth -----------------------------------------------------------------------

        def _token_endpoint(self, auth: TokenAuth) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            user, password = "", ""
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if auth.users.get(user) != password or not user:
                self._reply(
                    401, b'{"details":"wrong credentials"}', {"Content-Type": "application/json"}
                )
                return
            granted: set[tuple[str, str]] = set()
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                if kind == "repository":
                    granted |= {(name, action) for action in actions.split(",")}
            token = secrets.token_hex(16)
            with proxy.lock:
                auth.tokens[token] = granted
                auth.issued.append(tuple(sorted(query.get("scope", []))))
            body = f'{{"token": "{token}", "expires_in": 300}}'.encode()
            self._reply(200, body, {"Content-Type": "application/json"})

        def _check_token(self, auth: TokenAuth, repository: str) -> frozenset[str] | None:
            """The token's repositories if it allows this request; None after a 401."""
            header = self.headers.get("Authorization", "")
            granted = auth.tokens.get(header[7:]) if header.startswith("Bearer ") else None
            needed: set[tuple[str, str]] = set()
            if repository:
                action = "pull" if self.command in ("GET", "HEAD") else "push"
                needed.add((repository, action))
                source = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("from")
                if source:
                    needed.add((source[0], "pull"))
            if granted is None or not needed <= granted:
                realm = f"http://{proxy.host}/token"
                challenge = f'Bearer realm="{realm}",service="{auth.service}"'
                if repository:
                    challenge += f',scope="repository:{repository}:pull,push"'
                    if granted is not None:
                        challenge += ',error="insufficient_scope"'
                for _ in self._body_chunks():
                    pass
                self._reply(
                    401,
                    b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                    {
                        "WWW-Authenticate": challenge,
                        "Content-Type": "application/json",
                        "Docker-Distribution-API-Version": "registry/2.0",
                    },
                )
                return None
            return frozenset(name for name, _ in granted)

        # ---- the request ----------------------------------------------------------------

        def _handle(self) -> None:
            path = self.path
            match = _REPO_PATH.match(urllib.parse.urlsplit(path).path)
            repository = match.group(1) if match else ""
            token_repos: frozenset[str] | None = None
            if proxy.auth is not None:
                if path.startswith("/token"):
                    self._token_endpoint(proxy.auth)
                    return
                token_repos = self._check_token(proxy.auth, repository)
                if token_repos is None:
                    return
            fault = proxy._take_fault(self.command, path)
            if fault is not None and fault.action == "status":
                for _ in self._body_chunks():
                    pass
                headers = dict(fault.headers)
                if fault.retry_after:
                    headers["Retry-After"] = fault.retry_after
                proxy._record(Logged(self.command, path, fault.status, repository, token_repos))
                self._reply(fault.status, b"injected", headers)
                return
            if fault is not None and fault.action == "drop_request":
                half = int(self.headers.get("Content-Length") or 0) // 2
                for _ in self._body_chunks(limit=half):
                    pass
                proxy._record(Logged(self.command, path, 0, repository, token_repos))
                self._drop()
                return
            # Recorded as soon as the registry answers, before the client sees the answer, so
            # a test that counts requests right after a call sees them all.
            self._forward(
                fault,
                lambda status: proxy._record(
                    Logged(self.command, path, status, repository, token_repos)
                ),
            )

        def _forward(self, fault: Fault | None, record: Callable[[int], None]) -> int:
            upstream = http.client.HTTPConnection(proxy.upstream, timeout=120)
            try:
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
                body = b"".join(self._body_chunks()) if chunked else None
                for key, value in self.headers.items():
                    if key.lower() in _HOP_BY_HOP or (chunked and key.lower() == "content-length"):
                        continue
                    upstream.putheader(key, value)
                if body is not None:
                    upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders()
                if body is not None:
                    upstream.send(body)
                else:
                    for chunk in self._body_chunks():
                        upstream.send(chunk)
                response = upstream.getresponse()
                if fault is not None and fault.action == "drop_response":
                    response.read()
                    record(0)
                    self._drop()
                    return 0
                record(response.status)
                self.send_response(response.status)
                length = response.getheader("Content-Length")
                data = None
                if length is None and self.command != "HEAD":
                    data = response.read()
                    length = str(len(data))
                for key, value in response.getheaders():
                    if key.lower() in _HOP_BY_HOP or key.lower() == "content-length":
                        continue
                    self.send_header(key, value)
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                if self.command == "HEAD":
                    return response.status
                total = int(length or 0)
                sent = 0
                chunks = (
                    iter([data]) if data is not None else iter(lambda: response.read(_CHUNK), b"")
                )
                for chunk in chunks:
                    if (
                        fault is not None
                        and fault.action == "truncate"
                        and sent + len(chunk) > total // 2
                    ):
                        self.wfile.write(chunk[: total // 2 - sent])
                        self._drop()
                        return response.status
                    if fault is not None and fault.action == "corrupt" and sent == 0 and chunk:
                        self.wfile.write(bytes([chunk[0] ^ 0xFF]) + chunk[1:])
                    else:
                        self.wfile.write(chunk)
                    sent += len(chunk)
                return response.status
            finally:
                upstream.close()

    return Handler
