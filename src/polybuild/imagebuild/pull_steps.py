"""A base image's pull as BuildKit shows it: each layer blob fetched as a
`sha256:... 2.15MB / 2.15MB 0.2s done` line of the `[1/3] FROM REF@sha256:...` step (held
until that step is shown: polybuild pulls while it converts the Dockerfile, BuildKit in the
FROM step), and each token fetched with the user's credentials as its own `[auth]
library/busybox:pull token for HOST` step (BuildKit's session auth provider's name)."""

from __future__ import annotations

import threading

from polybuild.platforms import Platform, format_platform
from polybuild.progress.events import VertexCompleted, VertexStarted, VertexStatus
from polybuild.progress.writer import ProgressWriter
from polybuild.registry.pull_progress import BlobFetched, TokenFetched


def pull_key(ref: str, platform: Platform) -> str:
    """The key a pull's blob lines are held under until its FROM step releases them."""
    return f"pull:{ref}:{format_platform(platform)}"


def auth_step_name(event: TokenFetched) -> str:
    """BuildKit's `[auth] SCOPES token for HOST` (scopes without `repository:`)."""
    scopes = " ".join(scope.removeprefix("repository:") for scope in event.scopes)
    return f"[auth] {scopes} token for {event.host}"


class PullSteps:
    """The PullObserver of one build: blob lines held for the FROM step of (ref, platform)
    `key` (given per pull by `for_pull`), each `[auth]` step shown once per build."""

    def __init__(self, progress: ProgressWriter) -> None:
        self.progress = progress
        self._shown: set[str] = set()
        self._lock = threading.Lock()

    def for_pull(self, ref: str, platform: Platform) -> _PullObserver:
        return _PullObserver(self, pull_key(ref, platform))

    def token(self, event: TokenFetched) -> None:
        name = auth_step_name(event)
        with self._lock:
            if name in self._shown:
                return
            self._shown.add(name)
        vertex = f"auth:{name}"
        self.progress.emit(VertexStarted(vertex, name, event.started))
        self.progress.emit(VertexCompleted(vertex, event.completed, error=event.error))


class _PullObserver:
    def __init__(self, steps: PullSteps, key: str) -> None:
        self.steps = steps
        self.key = key

    def blob_fetched(self, event: BlobFetched) -> None:
        status = VertexStatus(
            "", event.digest, event.completed, event.size, event.size,
            started=event.started, completed=event.completed,
        )  # fmt: skip
        self.steps.progress.hold(self.key, status)

    def token_fetched(self, event: TokenFetched) -> None:
        self.steps.token(event)


__all__ = ["PullSteps", "auth_step_name", "pull_key"]
