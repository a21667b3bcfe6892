"""A link to a node through a child process (ssh, or a local `polybuild dial-stdio`): the
protocol runs over its stdin and stdout, its stderr is kept to explain a failure."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from polybuild.errors import NodeUnreachableError
from polybuild.remote.channel import Channel

STDERR_KEEP = 16 * 1024  # the end of the child's stderr that explains a failure
EXIT_GRACE = 2.0  # seconds a child gets to exit after its input closes, before SIGTERM


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a link failed, in the user's words: a reason and what to do about it."""

    reason: str
    hint: str | None = None


# (the child's stderr, its exit status or None while it runs) -> why the link failed
Explain = Callable[[str, int | None], Failure | None]


def printable(text: str, limit: int = 300) -> str:
    """`text` safe to show on a terminal: the node (or its shell) wrote it, so control
    characters (escape sequences) become `?`, and it is cut at `limit` characters."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def last_line(stderr: str) -> str:
    """What a child's stderr ends with, printable: the last error polybuild reported
    (`ERROR: ...`, before its hint) if any, else the last non-empty line ("" for none)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")]
    return printable((errors or lines or [""])[-1])


def explain_plainly(stderr: str, status: int | None) -> Failure | None:
    """The default Explain: the child's last words, or how it ended (nothing to add when it
    ended well: then the conversation itself went wrong)."""
    if status == 0:
        return None
    line = last_line(stderr)
    if line:
        return Failure(line)
    if status is not None:
        return Failure(f"the connection closed (exit status {status})")
    return None


async def _keep_tail(stream: asyncio.StreamReader) -> bytes:
    tail = b""
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-STDERR_KEEP:]
    return tail


class ProcessLink:
    """The channel to a node over a child process's pipes; `close` leaves nothing running."""

    def __init__(self, endpoint: str, process: asyncio.subprocess.Process, explain: Explain):
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        self.endpoint = endpoint
        self.process = process
        self.channel = Channel(process.stdout, process.stdin)
        self._explain = explain
        self._stderr = asyncio.create_task(_keep_tail(process.stderr))

    async def failure(self, fallback: str, *, hint: str | None = None) -> NodeUnreachableError:
        """The error to raise when the conversation broke: what the child said on stderr
        once it has exited (its input closed, waiting up to EXIT_GRACE), else `fallback`."""
        await self.channel.close()
        await self._exited_within(EXIT_GRACE)
        stderr = b""
        if self._stderr.done() or self.process.returncode is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EXIT_GRACE):
                    stderr = await asyncio.shield(self._stderr)
        found = self._explain(stderr.decode(errors="replace"), self.process.returncode)
        if found is None:
            return NodeUnreachableError(self.endpoint, fallback, hint=hint)
        return NodeUnreachableError(self.endpoint, found.reason, hint=found.hint or hint)

    async def close(self, *, grace: float = EXIT_GRACE) -> None:
        """End the session: close the child's input and give it `grace` seconds to exit
        (the node's side ends with its input), then SIGTERM, then SIGKILL."""
        await self.channel.close()
        if not await self._exited_within(grace):
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            if not await self._exited_within(EXIT_GRACE):
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        self._stderr.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._stderr

    async def _exited_within(self, seconds: float) -> bool:
        if self.process.returncode is None and seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self.process.wait()
        return self.process.returncode is not None


async def spawn(
    endpoint: str,
    argv: Sequence[str],
    *,
    explain: Explain = explain_plainly,
    env: Mapping[str, str] | None = None,
) -> ProcessLink:
    """Start `argv` with pipes on all three descriptors, in a session of its own (so the
    client decides when it ends: a Ctrl-C reaches us, and we cancel remote work first)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise NodeUnreachableError(
            endpoint, f"cannot start {argv[0]}: {exc.strerror or exc}"
        ) from exc
    return ProcessLink(endpoint, process, explain)
