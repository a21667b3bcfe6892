"""A hostile registry for tests: loopback HTTP servers whose every answer is a function of the
request, written raw (any status, any headers, bodies huge or malformed), one per connection.
Every request is recorded with its headers, so tests can check where credentials went."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Seen:
    """One request as the server got it; `server` is the index of the port it came to."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    server: int

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass(frozen=True)
class Answer:
    """What to send back: the body is `body` repeated `repeat` times, streamed (never built).

    `length` is the Content-Length header: "auto" for the true length, None for none (the
    body then ends when the connection closes), any other text as it is.
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    repeat: int = 1
    length: str | None = "auto"


Responder = Callable[[Seen], Answer]


class HostileServer:
    """`with HostileServer(respond, servers=2) as hostile:`; `hostile.hosts[i]` is host:port."""

    def __init__(self, respond: Responder, *, servers: int = 1) -> None:
        self.respond = respond
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self._servers = [
            ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, n)) for n in range(servers)
        ]
        for server in self._servers:
            server.daemon_threads = True
        self.hosts = [f"127.0.0.1:{s.server_address[1]}" for s in self._servers]
        self._threads = [
            threading.Thread(target=s.serve_forever, args=(0.02,), daemon=True)
            for s in self._servers
        ]

    @property
    def host(self) -> str:
        return self.hosts[0]

    def __enter__(self) -> HostileServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def requests(self, server: int | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if server is None or s.server == server]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()


def _handler(hostile: HostileServer, index: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._handle()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _handle(self) -> None:
            length = self.headers.get("Content-Length", "")
            if length.isdigit():
                self.rfile.read(int(length))
            seen = Seen(
                self.command,
                self.path,
                {key.lower(): value for key, value in self.headers.items()},
                index,
            )
            with hostile.lock:
                hostile.seen.append(seen)
            answer = hostile.respond(seen)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._write(answer)

        def _write(self, answer: Answer) -> None:
            head = [f"HTTP/1.1 {answer.status} Hostile\r\n"]
            head += [f"{key}: {value}\r\n" for key, value in answer.headers]
            if answer.length == "auto":
                head.append(f"Content-Length: {len(answer.body) * answer.repeat}\r\n")
            elif answer.length is not None:
                head.append(f"Content-Length: {answer.length}\r\n")
            head.append("Connection: close\r\n\r\n")
            self.wfile.write("".join(head).encode("latin-1"))
            if self.command == "HEAD" or not answer.body:
                return
            if len(answer.body) * answer.repeat <= _CHUNK:
                self.wfile.write(answer.body * answer.repeat)
                return
            # Big bodies go out in chunks of whole copies, so nothing large is ever built here.
            copies = max(_CHUNK // len(answer.body), 1)
            chunk = answer.body * copies
            remaining = answer.repeat
            while remaining >= copies:
                self.wfile.write(chunk)
                remaining -= copies
            self.wfile.write(answer.body * remaining)

    return Handler
