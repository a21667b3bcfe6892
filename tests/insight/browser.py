"""A headless Chromium for tests, driven through the DevTools protocol over a pipe
(`--remote-debugging-pipe`: JSON messages ended by NUL on the child's fds 3 and 4), so no
port, no websocket library and no browser download: Debian's chromium-headless-shell (or
chromium) as installed by scripts/setup.

The browser gets a fresh profile and a proxy that leads nowhere (a closed loopback port), so
nothing it might fetch leaves this machine; every request a page makes is recorded.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import require

CANDIDATES = ("chromium-headless-shell", "chromium")
_TIMEOUT = 60.0


def find_browser() -> str:
    """The browser's path; the test fails with what to install when there is none."""
    found = next((p for p in (shutil.which(c) for c in CANDIDATES) if p), None)
    require(
        found is not None,
        "a headless Chromium (apt-get install chromium-headless-shell) to render reports",
    )
    assert found is not None
    return found


def _above_four(fd: int) -> int:
    """`fd` moved to 10 or above, so that putting the pipe's ends at 3 and 4 never
    overwrites one with the other."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class BrowserError(AssertionError):
    """The browser answered with an error, or not at all."""


class Browser:
    """One browser process and one page (a target attached in flat mode)."""

    def __init__(self, executable: str, profile: Path, width: int, height: int) -> None:
        to_child, self._writer = os.pipe()
        self._reader, from_child = os.pipe()
        to_child, from_child = _above_four(to_child), _above_four(from_child)

        args = [
            executable,
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--proxy-server=127.0.0.1:9",  # the discard port, closed: no request leaves
            "--proxy-bypass-list=<-loopback>",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--mute-audio",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to start its sandbox as root
        self.log = profile / "browser.log"
        # posix_spawn puts our pipe's ends at the child's fds 3 (commands) and 4 (replies)
        with self.log.open("wb") as log, open(os.devnull, "rb") as null:
            self.pid = os.posix_spawn(
                executable,
                [*args, "about:blank"],
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, null.fileno(), 0),
                    (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                    (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
                    (os.POSIX_SPAWN_DUP2, to_child, 3),
                    (os.POSIX_SPAWN_DUP2, from_child, 4),
                ],
            )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.requests: list[str] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=self.session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=self.session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._reader], [], [], max(left, 0))
            if not ready:
                raise BrowserError(f"no answer from the browser: {self._log_tail()}")
            chunk = os.read(self._reader, 1 << 16)
            if not chunk:
                raise BrowserError(f"the browser closed its pipe: {self._log_tail()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(line)
        if message.get("method") == "Network.requestWillBeSent":
            self.requests.append(message["params"]["request"]["url"])
        return message

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return ""

    def call(self, method: str, *, session: str | None = None, **params: Any) -> Any:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._writer, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError(f"the browser is gone: {self._log_tail()}") from None
        deadline = time.monotonic() + _TIMEOUT
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event `method` of the page not yet taken."""
        deadline = time.monotonic() + _TIMEOUT
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(index)
            self.events.append(self._message(deadline))

    def open(self, path: Path) -> None:
        """Load a file and wait until it (and anything it asked for) has loaded."""
        self.events.clear()
        self.call("Page.navigate", session=self.session, url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        result = self.call(
            "Runtime.evaluate", session=self.session, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, *, full_page: bool = True) -> bytes:
        """The page as PNG bytes (all of it, or the window)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            width, height = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", session=self.session, **params)["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.call("Browser.close")
        deadline = time.monotonic() + 10
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        for fd in (self._reader, self._writer):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def browser(width: int = 1240, height: int = 900) -> Iterator[Browser]:
    """A started browser with one page, closed (and its profile removed) at the end."""
    executable = find_browser()
    profile = Path(tempfile.mkdtemp(prefix="polybuild-browser-"))
    try:
        running = Browser(executable, profile, width, height)
        try:
            yield running
        finally:
            running.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


__all__ = ["Browser", "BrowserError", "browser", "find_browser"]
