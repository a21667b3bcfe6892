"""Loading a built image into a running Docker Engine, as buildx's `--load` does.

An engine is present when `DOCKER_HOST` names one (with `DOCKER_TLS_VERIFY` and
`DOCKER_CERT_PATH` as the docker CLI reads them), or else when `/var/run/docker.sock`
exists and answers. The image goes to the engine's `POST /images/load` as a docker-archive
streamed from a pipe (never a temporary file), through the Docker SDK for Python, which is
imported only here and only when an engine is used.

An engine with the classic image store loads one platform. For several platforms buildx
refuses ("docker exporter does not currently support exporting manifest lists"); polybuild
loads the platform the engine runs (its `Os`/`Arch`), keeps every platform in its own image
store, and says so in a warning.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from polybuild.errors import DockerEngineError, PolybuildError
from polybuild.exporters.archive import write_docker_archive
from polybuild.exporters.assemble import AssembledImage
from polybuild.image.reference import Reference
from polybuild.platforms import Platform, format_platform, normalize, only

if TYPE_CHECKING:
    from docker import APIClient

DEFAULT_SOCKET = Path("/var/run/docker.sock")
# Loading a large image can keep the engine silent for a long time (it unpacks each layer
# as it arrives); the SDK's 60 s default would abort a healthy load.
LOAD_TIMEOUT = 3600
PING_TIMEOUT = 10
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class EngineAddress:
    """Where the engine is: `url` as the Docker SDK takes it; `explicit` when from DOCKER_HOST."""

    url: str
    explicit: bool


@dataclass(frozen=True, slots=True)
class Engine:
    """A reachable engine: its address and the platform it runs."""

    address: str
    platform: Platform
    api_version: str


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What the engine loaded: its own lines ("Loaded image: app:1"), the platform sent."""

    engine: Engine
    messages: tuple[str, ...]
    platform: Platform
    warning: str | None


def engine_address(
    environ: Mapping[str, str] | None = None, default_socket: Path = DEFAULT_SOCKET
) -> EngineAddress | None:
    """The engine to load into, from the environment: DOCKER_HOST, else the default socket
    when it exists (whether it answers is `connect`'s question); None without either."""
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST", "")
    if host:
        return EngineAddress(host, explicit=True)
    if default_socket.is_socket():
        return EngineAddress(f"unix://{default_socket}", explicit=False)
    return None


def _client(address: EngineAddress, environ: Mapping[str, str], timeout: int) -> APIClient:
    from docker import APIClient
    from docker.utils import kwargs_from_env

    kwargs = kwargs_from_env(environment=dict(environ))
    kwargs["base_url"] = address.url
    # version=None asks the engine for its API version (GET /version): the first request,
    # so an engine that does not answer fails here.
    return APIClient(version=None, timeout=timeout, **kwargs)


def _unreachable(address: str, exc: BaseException) -> DockerEngineError:
    return DockerEngineError(
        f"Docker Engine at {address}: cannot connect: {exc}",
        hint="start the engine, or unset DOCKER_HOST to keep the image in polybuild's "
        "image store only",
    )


def _connect(
    address: EngineAddress, environ: Mapping[str, str], timeout: int
) -> tuple[APIClient, Engine]:
    """A client that has reached the engine, and what the engine said of itself."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        client = _client(address, environ, timeout)
        version = client.version()
    except (DockerException, RequestException, OSError) as exc:
        raise _unreachable(address.url, exc) from exc
    platform = normalize(Platform(str(version.get("Os", "linux")), str(version.get("Arch", ""))))
    return client, Engine(address.url, platform, str(version.get("ApiVersion", "")))


def _connect_present(
    environ: Mapping[str, str], default_socket: Path, timeout: int
) -> tuple[APIClient, Engine] | None:
    address = engine_address(environ, default_socket)
    if address is None:
        return None
    try:
        return _connect(address, environ, timeout)
    except DockerEngineError:
        if address.explicit:
            raise
        return None  # a socket file nothing answers on is no engine


def detect_engine(
    environ: Mapping[str, str] | None = None, default_socket: Path = DEFAULT_SOCKET
) -> Engine | None:
    """The engine that `--load` loads into, or None: none configured, or the default socket
    exists but nothing answers on it. DockerEngineError when DOCKER_HOST names an engine
    that cannot be reached (the user asked for that one)."""
    connected = _connect_present(
        dict(os.environ if environ is None else environ), default_socket, PING_TIMEOUT
    )
    if connected is None:
        return None
    client, engine = connected
    client.close()
    return engine


def engine_image(image: AssembledImage, engine: Engine) -> tuple[AssembledImage, str | None]:
    """The image narrowed to the platform the engine runs (the best match, else the first),
    and a warning naming the platforms left out when there were several."""
    if len(image.platforms) < 2:
        return image, None
    best = only(engine.platform).best([p.platform for p in image.platforms])
    chosen = next((p for p in image.platforms if p.platform == best), image.platforms[0])
    others = ", ".join(format_platform(p.platform) for p in image.platforms if p is not chosen)
    target = chosen.manifest.descriptor(platform=chosen.platform)
    narrowed = replace(image, target=target, index=None, platforms=(chosen,))
    warning = (
        f"the Docker Engine at {engine.address} ({format_platform(engine.platform)}) gets "
        f"{format_platform(chosen.platform)} only; {others} stay in polybuild's image store "
        "(buildx refuses to load several platforms: docker exporter does not currently "
        "support exporting manifest lists)"
    )
    return narrowed, warning


class _ArchiveStream:
    """A docker-archive written by a thread into a pipe, read here in chunks."""

    def __init__(self, image: AssembledImage, names: Sequence[Reference]) -> None:
        read_fd, write_fd = os.pipe()
        self._reader: BinaryIO = os.fdopen(read_fd, "rb")
        self._writer: BinaryIO = os.fdopen(write_fd, "wb")
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._write, args=(image, names), name="docker-archive", daemon=True
        )
        self._thread.start()

    def _write(self, image: AssembledImage, names: Sequence[Reference]) -> None:
        try:
            with self._writer:
                write_docker_archive(self._writer, image, names)
        except BaseException as exc:  # handed to the loading thread, which reports it
            self.error = exc

    def chunks(self) -> Iterator[bytes]:
        while chunk := self._reader.read(_CHUNK):
            yield chunk

    def close(self) -> None:
        """Stop reading (a writer still writing then fails with EPIPE) and wait for it."""
        self._reader.close()
        self._thread.join()


def _messages(address: str, replies: Iterator[object]) -> tuple[str, ...]:
    lines = []
    for reply in replies:
        if not isinstance(reply, dict):
            continue
        if reply.get("error") or reply.get("errorDetail"):
            detail = reply.get("errorDetail")
            message = reply.get("error") or (
                detail.get("message") if isinstance(detail, dict) else None
            )
            raise DockerEngineError(f"Docker Engine at {address} refused the image: {message}")
        stream = reply.get("stream")
        if isinstance(stream, str) and stream.strip():
            lines.append(stream.strip())
    return tuple(lines)


def load_into_engine(
    image: AssembledImage,
    names: Sequence[Reference],
    environ: Mapping[str, str] | None = None,
    default_socket: Path = DEFAULT_SOCKET,
) -> LoadResult | None:
    """Stream the image (the engine's platform of it) to the engine's `POST /images/load`;
    None when there is no engine. DockerEngineError, naming the engine's address, when the
    engine cannot be reached or refuses the image."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    connected = _connect_present(
        dict(os.environ if environ is None else environ), default_socket, LOAD_TIMEOUT
    )
    if connected is None:
        return None
    client, engine = connected
    address = engine.address
    narrowed, warning = engine_image(image, engine)
    stream = _ArchiveStream(narrowed, names)
    try:
        # types-docker leaves load_image untyped: it returns the engine's decoded JSON lines.
        load: Callable[[Iterator[bytes]], Iterable[object] | None] = client.load_image
        replies = load(stream.chunks())
        messages = _messages(address, iter(replies or ()))
    except (DockerException, RequestException, OSError) as exc:
        if stream.error is not None:
            raise _send_failed(address, stream.error) from exc
        reason = getattr(exc, "explanation", None) or exc
        raise DockerEngineError(f"Docker Engine at {address} refused the image: {reason}") from exc
    finally:
        stream.close()
        client.close()
    if stream.error is not None:
        raise _send_failed(address, stream.error)
    return LoadResult(engine, messages, narrowed.platforms[0].platform, warning)


def _send_failed(address: str, error: BaseException) -> PolybuildError:
    if isinstance(error, PolybuildError):
        return error
    return DockerEngineError(f"Docker Engine at {address}: the image could not be sent: {error}")


__all__ = [
    "DEFAULT_SOCKET",
    "Engine",
    "EngineAddress",
    "LoadResult",
    "detect_engine",
    "engine_address",
    "engine_image",
    "load_into_engine",
]
