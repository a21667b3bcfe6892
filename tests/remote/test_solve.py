"""A solve over the protocol in-process (a socket pair, a fake backend, no root): the
context goes by content and only what the node's cache lacks, progress comes back, the
result's blobs are fetched by digest, and the node refuses manifests that would escape."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from msgspec.structs import replace

from polybuild.errors import DigestMismatchError, NodeUnreachableError, RemoteError
from polybuild.image.content import BlobReader, ContentStore
from polybuild.image.digest import Digest
from polybuild.progress.events import BuildWarning, Event, VertexLog, VertexStarted
from polybuild.remote.channel import Channel
from polybuild.remote.context_tree import sync_tree
from polybuild.remote.contextcache import ContextCache, check_manifest
from polybuild.remote.messages import (
    PROTOCOL_VERSION,
    BlobWanted,
    BuiltImage,
    ContextEntry,
    ContextWanted,
    HelloOk,
    Progress,
    Solve,
    SolveDone,
)
from polybuild.remote.node_images import ImageExchange
from polybuild.remote.progress_wire import from_message
from polybuild.remote.server import serve
from polybuild.remote.session import Session, open_session


class FakeBackend:
    """Records each build's context as the node materialised it; serves a blob store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = ContentStore(root / "store")
        self.seen: list[dict[str, bytes | str]] = []
        self.fail = False

    @property
    def data_root(self) -> Path:
        return self.root

    async def build(
        self,
        solve: Solve,
        context_dir: Path,
        work_dir: Path,
        emit: Callable[[Event], None],
        images: ImageExchange,
    ) -> SolveDone:
        tree: dict[str, bytes | str] = {}
        for path in sorted(context_dir.rglob("*")):
            rel = str(path.relative_to(context_dir))
            if path.is_symlink():
                tree[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                tree[rel] = path.read_bytes()
                tree[rel + ":mode"] = oct(stat.S_IMODE(path.stat().st_mode))
        self.seen.append(tree)
        emit(VertexStarted("v1", "RUN true", 1.0))
        emit(VertexLog("v1", b"hello\n", 2.0))
        if self.fail:
            from polybuild.errors import DockerfileError

            raise DockerfileError("unknown instruction RUNN", line=1)
        layer = self.blobs.put(b"layer bytes" * 100_000)
        return SolveDone(
            solve.id, (BuiltImage("linux/amd64", b"{}", "m", b"{}", "c"),), (str(layer),)
        )

    def in_use(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def open_blob(self, digest: Digest) -> BlobReader:
        return self.blobs.open(digest)


class PairLink:
    """A Link over an in-process channel (the session's failure handling, without a child)."""

    def __init__(self, channel: Channel) -> None:
        self.endpoint = "test-node"
        self.channel = channel

    async def failure(self, fallback: str, *, hint: str | None = None) -> NodeUnreachableError:
        return NodeUnreachableError(self.endpoint, fallback, hint=hint)

    async def close(self, *, grace: float = 0) -> None:
        await self.channel.close()


def entry(path: str, data: bytes, mode: int = 0o100644) -> ContextEntry:
    return ContextEntry(path, mode, len(data), "sha256:" + hashlib.sha256(data).hexdigest())


def solve_of(*entries: ContextEntry) -> Solve:
    return Solve(1, b"FROM scratch\n", "Dockerfile", ("linux/amd64",), tuple(entries))


async def with_node(backend: FakeBackend, body: Callable[[Session], object]) -> object:
    a, b = socket.socketpair()
    client = Channel(*await asyncio.open_connection(sock=a))
    node = Channel(*await asyncio.open_connection(sock=b))
    server = asyncio.create_task(serve(node, backend=lambda: backend))

    async def opener() -> PairLink:
        return PairLink(client)

    session = await open_session("test-node", opener)  # type: ignore[arg-type]
    try:
        return await body(session)  # type: ignore[misc]
    finally:
        await session.close()
        await asyncio.wait_for(server, 5)


def test_context_goes_by_content_and_only_once(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path / "node")
    here = tmp_path / "here"
    here.mkdir()
    (here / "a").write_bytes(b"A" * 3_000_000)  # three chunks
    (here / "b").write_bytes(b"B")
    files = {e.digest: here / e.path for e in (entry("a", b"A" * 3_000_000), entry("b", b"B"))}
    context = (
        ContextEntry("d", stat.S_IFDIR | 0o755),
        entry("d/a", b"A" * 3_000_000, 0o100755),
        entry("b", b"B"),
        entry("d/same-as-b", b"B"),
        ContextEntry("link", stat.S_IFLNK | 0o777, target="d/a"),
    )
    sent: list[tuple[int, int]] = []
    events: list[Progress] = []

    async def body(session: Session) -> object:
        first = await session.solve(solve_of(*context), files, events.append,
                                    lambda n, size: sent.append((n, size)))  # fmt: skip
        second = await session.solve(
            Solve(2, b"", "Dockerfile", ("linux/amd64",), context), files, events.append
        )
        layer = first.done.executed[0]
        got = bytearray()

        class Sink:
            def write(self, data: bytes) -> int:
                got.extend(data)
                return len(data)

        await session.fetch((layer,), lambda index: Sink())
        assert bytes(got) == b"layer bytes" * 100_000
        return first, second

    first, second = asyncio.run(with_node(backend, body))  # type: ignore[misc]
    assert (first.files_sent, first.bytes_sent) == (2, 3_000_001)
    assert sent == [(2, 3_000_001)]
    assert (second.files_sent, second.bytes_sent) == (0, 0)  # the node's cache had them
    assert (
        backend.seen[0]
        == backend.seen[1]
        == {
            "b": b"B",
            "b:mode": "0o644",
            "d/a": b"A" * 3_000_000,
            "d/a:mode": "0o755",
            "d/same-as-b": b"B",
            "d/same-as-b:mode": "0o644",
            "link": "-> d/a",
        }
    )
    assert [e.kind for e in events] == ["started", "log"] * 2
    started = from_message(events[0], "node-1")
    assert isinstance(started, VertexStarted) and started.name == "RUN true"
    assert not any((tmp_path / "node" / "remote" / "work").iterdir())  # private dirs removed


def test_a_failed_build_is_the_nodes_error_and_the_session_goes_on(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path / "node")
    backend.fail = True
    events: list[Progress] = []

    async def body(session: Session) -> object:
        with pytest.raises(RemoteError, match="unknown instruction RUNN") as caught:
            await session.solve(solve_of(), {}, events.append)
        # DockerfileError renders its own location, so it comes back as the node's words.
        assert type(caught.value) is RemoteError
        assert str(caught.value) == "node test-node: Dockerfile:1: unknown instruction RUNN"
        backend.fail = False
        return await session.solve(solve_of(), {}, events.append)

    done = asyncio.run(with_node(backend, body))
    assert done is not None
    assert [e.kind for e in events] == ["started", "log"] * 2  # events before the error too


def test_a_corrupt_context_file_is_refused(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path / "node")
    here = tmp_path / "x"
    here.write_bytes(b"not what the manifest says")

    async def body(session: Session) -> object:
        claimed = entry("x", b"something else entirely!!!")
        with pytest.raises(DigestMismatchError, match="^node test-node: blob content has"):
            await session.solve(solve_of(claimed), {claimed.digest: here}, lambda _: None)
        return None

    asyncio.run(with_node(backend, body))
    assert backend.seen == []
    assert list(ContentStore(tmp_path / "node" / "remote" / "context")) == []


@pytest.mark.parametrize(
    "bad",
    [
        ContextEntry("../escape", 0o100644, 1, "sha256:" + "0" * 64),
        ContextEntry("/abs", 0o100644, 1, "sha256:" + "0" * 64),
        ContextEntry("a//b", 0o100644, 1, "sha256:" + "0" * 64),
        ContextEntry("dev", stat.S_IFCHR | 0o644),
        ContextEntry("f", 0o100644, 1, "md5:abc"),
    ],
)
def test_manifests_that_escape_or_lie_are_refused(bad: ContextEntry) -> None:
    with pytest.raises(RemoteError):
        check_manifest([bad])


def test_nothing_is_created_through_a_symlink(tmp_path: Path) -> None:
    cache = ContextCache(tmp_path / "root")
    data = b"x"
    digest = cache.store.put(data)
    dest = tmp_path / "ctx"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    entries = [
        ContextEntry("l", stat.S_IFLNK | 0o777, target=str(outside)),
        ContextEntry("l/f", 0o100644, 1, str(digest)),
    ]
    with pytest.raises(RemoteError, match="symlink"):
        sync_tree(cache, entries, dest, {}, tmp_path)
    assert list(outside.iterdir()) == []


def test_a_node_may_not_read_blobs_it_was_not_offered(tmp_path: Path) -> None:
    secret = ContentStore(tmp_path / "client").put(b"not the node's business")

    class Store:
        def find(self, ref: str, platform: str) -> None:
            return None

        def open(self, digest: str) -> BlobReader:
            raise AssertionError(f"the client opened {digest}")

    async def hostile_node(channel: Channel) -> None:
        await channel.receive()  # hello
        await channel.send(HelloOk(PROTOCOL_VERSION, "0.1.0", ("solve",)))
        solve = await channel.receive()
        assert isinstance(solve, Solve)
        await channel.send(ContextWanted(solve.id, ()))
        await channel.send(BlobWanted(solve.id, 1, 1, (str(secret),)))
        while await channel.receive() is not None:
            pass

    async def main() -> None:
        a, b = socket.socketpair()
        client = Channel(*await asyncio.open_connection(sock=a))
        node = Channel(*await asyncio.open_connection(sock=b))
        task = asyncio.create_task(hostile_node(node))

        async def opener() -> PairLink:
            return PairLink(client)

        session = await open_session("test-node", opener)  # type: ignore[arg-type]
        with pytest.raises(NodeUnreachableError, match="not offered"):
            await session.solve(solve_of(), {}, lambda _: None, images=Store())  # type: ignore[arg-type]
        await session.close()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


def test_progress_from_two_nodes_never_shares_a_vertex_and_keeps_the_nodes_names() -> None:
    message = Progress(1, "started", vertex="sha256:abc", name="RUN x\x1b[2J", inputs=("sha256:d",))
    a, b = from_message(message, "a"), from_message(message, "b")
    assert isinstance(a, VertexStarted) and isinstance(b, VertexStarted)
    assert (a.vertex, a.inputs, a.name) == ("a/sha256:abc", ("a/sha256:d",), "RUN x?[2J")
    assert b.vertex == "b/sha256:abc" and b.name == a.name
    # the name is the node's, as buildx shows a node's steps: no node in it, the platform
    # only where the node's frontend put it (a multi-platform build)
    on_arm = replace(message, name="[stage-0 2/3] COPY . /", platform="linux/arm64")
    named = from_message(on_arm, "node-arm64")
    assert isinstance(named, VertexStarted) and named.platform is not None
    assert named.name == "[stage-0 2/3] COPY . /"
    both = replace(on_arm, name="[linux/arm64 stage-0 2/3] COPY . /")
    assert from_message(both, "n").name == "[linux/arm64 stage-0 2/3] COPY . /"  # type: ignore[union-attr]
    plain = replace(on_arm, name="exporting to image")
    assert from_message(plain, "n").name == "exporting to image"  # type: ignore[union-attr]
    warning = Progress(1, "warning", name="StageNameCasing: Stage name 'A' should be lowercase")
    found = from_message(warning, "n")
    assert isinstance(found, BuildWarning) and found.message == warning.name
    assert from_message(Progress(1, "a kind from the future"), "a") is None


def test_the_context_keeps_its_times(tmp_path: Path) -> None:
    cache = ContextCache(tmp_path / "root")
    digest = str(cache.store.put(b"x"))
    entries = [
        ContextEntry("d", stat.S_IFDIR | 0o555, mtime_ns=1_000_000_000_123),
        ContextEntry("d/f", 0o100644, 1, digest, mtime_ns=2_000_000_000_456),
        ContextEntry("d/l", stat.S_IFLNK | 0o777, target="f", mtime_ns=3_000_000_000_789),
    ]
    dest = tmp_path / "ctx"
    dest.mkdir()
    sync_tree(cache, entries, dest, {}, tmp_path)
    assert os.stat(dest / "d").st_mtime_ns == 1_000_000_000_123
    assert stat.S_IMODE(os.stat(dest / "d").st_mode) == 0o555
    assert os.stat(dest / "d" / "f").st_mtime_ns == 2_000_000_000_456
    assert os.lstat(dest / "d" / "l").st_mtime_ns == 3_000_000_000_789


class HeldBackend(FakeBackend):
    """Looks at its context, waits until every build has looked at its own, looks again."""

    def __init__(self, root: Path, builds: int) -> None:
        super().__init__(root)
        self.barrier = asyncio.Barrier(builds)
        self.dirs: list[Path] = []

    async def build(
        self,
        solve: Solve,
        context_dir: Path,
        work_dir: Path,
        emit: Callable[[Event], None],
        images: ImageExchange,
    ) -> SolveDone:
        done = await super().build(solve, context_dir, work_dir, emit, images)
        before = self.seen[-1]
        self.dirs.append(context_dir)
        await self.barrier.wait()
        await super().build(solve, context_dir, work_dir, emit, images)
        assert self.seen.pop() == before  # unchanged while the other build synced its own
        return done


def test_concurrent_solves_of_one_context_key_never_share_a_directory(tmp_path: Path) -> None:
    backend = HeldBackend(tmp_path / "node", builds=2)
    here = tmp_path / "here"
    here.mkdir()
    contents = {"one": b"first build", "two": b"second build"}
    for name, data in contents.items():
        (here / name).write_bytes(data)

    def solve(name: str) -> tuple[Solve, dict[str, Path]]:
        e = entry("f", contents[name])
        # the same key: a client may reuse one (or lie); each build still sees only its files
        return replace(solve_of(e), context_key="shared"), {e.digest: here / name}

    async def build(name: str) -> None:
        async def body(session: Session) -> object:
            return await session.solve(*solve(name), lambda _: None)

        await with_node(backend, body)

    async def both() -> None:
        await asyncio.gather(build("one"), build("two"))

    asyncio.run(both())
    assert sorted(seen["f"] for seen in backend.seen) == [b"first build", b"second build"]
    assert len(set(backend.dirs)) == 2
    # Each later build of the key takes a free slot and brings it to its own manifest.
    backend.barrier = asyncio.Barrier(1)
    asyncio.run(build("two"))
    assert backend.seen[-1] == {"f": b"second build", "f:mode": "0o644"}
    assert backend.dirs[-1] in backend.dirs[:2]
