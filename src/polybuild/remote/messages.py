"""The messages of polybuild's remote protocol (docs/protocol.md) and their msgpack encoding.

Each message is a frozen msgspec Struct tagged by its `type` field. Hello, HelloOk,
VersionMismatch, Error and Bye are the same in every protocol version (fields may only be
added, with defaults), so two versions can always tell each other that they differ; every
other message may change when PROTOCOL_VERSION does.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from polybuild.errors import RemoteError

PROTOCOL_VERSION = 4


class Hello(msgspec.Struct, frozen=True, tag="hello", tag_field="type"):
    """Client -> node, first: who is asking and which protocol it speaks."""

    protocol: int
    polybuild: str
    capabilities: tuple[str, ...] = ()


class HelloOk(msgspec.Struct, frozen=True, tag="hello-ok", tag_field="type"):
    """Node -> client: the node speaks the client's protocol; what it runs and can do."""

    protocol: int
    polybuild: str
    capabilities: tuple[str, ...] = ()


class VersionMismatch(msgspec.Struct, frozen=True, tag="version-mismatch", tag_field="type"):
    """Node -> client, instead of HelloOk: the node speaks another protocol and hangs up."""

    protocol: int
    polybuild: str


class Info(msgspec.Struct, frozen=True, tag="info", tag_field="type"):
    """Client -> node: describe yourself (answered by NodeInfo with the same id)."""

    id: int


class NodeInfo(msgspec.Struct, frozen=True, tag="node-info", tag_field="type"):
    """Node -> client: the node's version and the platforms its own probe found."""

    id: int
    polybuild: str
    protocol: int
    native: tuple[str, ...]  # formatted platforms, as `format_platform` writes them
    emulated: tuple[str, ...]  # runnable through binfmt_misc, in the probe's order
    data_root: str
    data_root_ok: bool
    data_root_problem: str = ""  # why not, when data_root_ok is false
    root: bool = False  # the node's polybuild runs as root (needed to build)

    @property
    def platforms(self) -> tuple[str, ...]:
        """Every platform the node runs: native first, then emulated."""
        return (*self.native, *self.emulated)


class Error(msgspec.Struct, frozen=True, tag="error", tag_field="type"):
    """Either side: request `id` failed (id 0: the connection as a whole; the sender hangs up)."""

    message: str
    hint: str = ""
    id: int = 0
    kind: str = ""  # the class of polybuild error it was, so the client can raise the same
    # A failed step (StepFailedError): its name, Dockerfile lines and their excerpt as
    # BuildKit prints them, so the client reports it as a local build does.
    step: str = ""
    lines: tuple[int, int] | None = None
    excerpt: str = ""


class Cancel(msgspec.Struct, frozen=True, tag="cancel", tag_field="type"):
    """Client -> node: stop the work of request `id`; the node answers it with an Error."""

    id: int


class Chunk(msgspec.Struct, frozen=True, tag="chunk", tag_field="type"):
    """Either side: the next piece of a byte stream `stream` (a blob, a context file);
    `last` ends it. Pieces of one stream arrive in order; streams may interleave."""

    stream: int
    data: bytes
    last: bool = False


class ContextEntry(msgspec.Struct, frozen=True, array_like=True):
    """One entry of a build context, after .dockerignore: what the node recreates.

    `path` is relative and `/`-separated; `mode` holds the type and permission bits as
    stat gives them (a directory, a regular file or a symlink); a file has its `size` and
    `digest` (sha256:...), a symlink its `target`; `mtime_ns` is kept because COPY keeps
    it (a layer built on a node is the layer this machine would build).
    """

    path: str
    mode: int
    size: int = 0
    digest: str = ""
    target: str = ""
    mtime_ns: int = 0


class Solve(msgspec.Struct, frozen=True, tag="solve", tag_field="type"):
    """Client -> node: build `platforms` from this Dockerfile and context (values only: no
    path of the client's). Answered by ContextWanted, then Progress messages, then SolveDone
    or an Error with the same id."""

    id: int
    dockerfile: bytes
    dockerfile_name: str
    platforms: tuple[str, ...]
    context: tuple[ContextEntry, ...]
    ignore_patterns: tuple[str, ...] = ()
    build_args: dict[str, str] = {}
    target: str = ""
    labels: dict[str, str] = {}
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    pull: bool = False
    network: str = "default"
    entitlements: tuple[str, ...] = ()
    source_date_epoch: int | None = None
    # --secret values by id: held in memory on the node, given to a step only on a private
    # tmpfs, never written to its disk, its cache or its logs.
    secrets: dict[str, bytes] = {}
    # Which of the client's contexts this is (an opaque hash, never a path): the node keeps a
    # directory per key and only updates it the next time (a hint for speed, not trusted).
    context_key: str = ""
    # --cache-from values the node imports itself (registry refs: read with its own access).
    cache_from: tuple[str, ...] = ()
    # "min" or "max": send back the build cache records (SolveDone.records) for the client
    # to export once for all nodes; "max" also fetches what an imported cache left out.
    cache_records: str = ""
    # --add-host entries (host, ip) for the /etc/hosts of RUN steps.
    add_hosts: tuple[tuple[str, str], ...] = ()
    # --ulimit (name, soft, hard) and --shm-size (bytes; 0: the default) of RUN steps.
    ulimits: tuple[tuple[str, int, int], ...] = ()
    shm_size: int = 0
    # --build-context NAME=docker-image://REF: NAME -> REF (an OCI layout's image: NAME ->
    # NAME@DIGEST, which the client offers when the node asks for it).
    named_images: dict[str, str] = {}
    # --build-context directories: NAME -> the index whose files `context` holds under
    # `.polybuild-named-contexts/<index>/` (which `ignore_patterns` excludes).
    named_dirs: dict[str, str] = {}


class ContextWanted(msgspec.Struct, frozen=True, tag="context-wanted", tag_field="type"):
    """Node -> client: the context files' digests the node's cache lacks. The client sends
    each as Chunk stream i+1 (i its index here), one after the other."""

    id: int
    digests: tuple[str, ...]


class Progress(msgspec.Struct, frozen=True, tag="progress", tag_field="type"):
    """Node -> client: one progress event of solve `id` (`kind`: started, completed, log,
    status or warning; the fields that kind does not use keep their defaults)."""

    id: int
    kind: str
    vertex: str = ""
    name: str = ""
    time: float = 0.0
    platform: str = ""
    emulated: bool = False
    inputs: tuple[str, ...] = ()
    cached: bool = False
    error: str | None = None
    canceled: bool = False
    data: bytes = b""
    stream: int = 1
    status_id: str = ""
    current: int = 0
    total: int = 0
    started: float | None = None
    completed: float | None = None
    detail: tuple[str, ...] = ()
    url: str = ""


class BuiltImage(msgspec.Struct, frozen=True):
    """One platform's result: the exact manifest and config bytes the node stored."""

    platform: str
    manifest: bytes
    manifest_media_type: str
    config: bytes
    config_media_type: str


class CachedLayer(msgspec.Struct, frozen=True, array_like=True):
    """One layer of a cache record's chain: its blob and uncompressed digest."""

    media_type: str
    digest: str
    size: int
    diff_id: str


class CacheRecord(msgspec.Struct, frozen=True, array_like=True):
    """A build cache record of the node's solve: a cache key and its layer chain."""

    key: str
    layers: tuple[CachedLayer, ...]


class SolveDone(msgspec.Struct, frozen=True, tag="solve-done", tag_field="type"):
    """Node -> client: solve `id` succeeded; one image per platform asked, in that order;
    with Solve.cache_records, the records whose layers the node holds (the client fetches
    them with BlobRequest)."""

    id: int
    images: tuple[BuiltImage, ...]
    executed: tuple[str, ...] = ()
    emulated_seconds: tuple[tuple[str, float], ...] = ()
    records: tuple[CacheRecord, ...] = ()


class BlobRequest(msgspec.Struct, frozen=True, tag="blob-request", tag_field="type"):
    """Client -> node: send these blobs of your content store, each as Chunk stream i+1
    (i its index here), one after the other; or an Error with this id."""

    id: int
    digests: tuple[str, ...]


class ImageWanted(msgspec.Struct, frozen=True, tag="image-wanted", tag_field="type"):
    """Node -> client, during solve `id`: which image is FROM `ref` for `platform`? The
    client resolves every reference once per build, for all nodes. (`request` numbers
    the question.)"""

    id: int
    request: int
    ref: str
    platform: str


class ImageOffer(msgspec.Struct, frozen=True, tag="image-offer", tag_field="type"):
    """Client -> node: the answer to ImageWanted `request`: the platform's manifest and
    config bytes from the client's store (`found`); else `pinned`, the reference with the
    digest the client resolved it to (`name:tag@sha256:...`), for the node to use from its
    store or pull; else neither (the client could not resolve it: the node resolves it
    itself)."""

    id: int
    request: int
    found: bool
    manifest: bytes = b""
    manifest_media_type: str = ""
    config: bytes = b""
    pinned: str = ""


class BlobWanted(msgspec.Struct, frozen=True, tag="blob-wanted", tag_field="type"):
    """Node -> client, after an ImageOffer: the layers the node lacks; the client sends
    blob i as Chunk stream `first_stream + i`, one after the other."""

    id: int
    request: int
    first_stream: int
    digests: tuple[str, ...]


class Bye(msgspec.Struct, frozen=True, tag="bye", tag_field="type"):
    """Client -> node: the session is over; the node exits (end of input means the same)."""


Message: TypeAlias = (
    Hello
    | HelloOk
    | VersionMismatch
    | Info
    | NodeInfo
    | Error
    | Cancel
    | Chunk
    | Bye
    | Solve
    | ContextWanted
    | Progress
    | SolveDone
    | BlobRequest
    | ImageWanted
    | ImageOffer
    | BlobWanted
)

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    """The msgpack bytes of one message (a frame's payload)."""
    return _encoder.encode(message)


def decode(payload: bytes) -> Message:
    """One message from a frame's payload; anything else is a RemoteError."""
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:  # ValidationError (an unknown type, a bad field) too
        raise RemoteError(f"undecodable message: {exc}") from exc
