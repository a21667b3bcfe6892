"""buildkit/fsutil_send: the FileSync sender against a fake receiver that speaks the daemon's
side of fsutil's protocol (checks its ordering and hard-link rules, asks for every file,
rebuilds the tree, ends with FIN) and compares the result with the source tree."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from polybuild.buildkit._proto.fsutil_stat_pb2 import Stat
from polybuild.buildkit._proto.fsutil_wire_pb2 import Packet
from polybuild.buildkit.fsutil_send import CHUNK_SIZE, filters_from_metadata, send_directory
from polybuild.buildkit.fsutil_stat import (
    MODE_CHAR_DEVICE,
    MODE_DEVICE,
    MODE_DIR,
    MODE_NAMED_PIPE,
    MODE_SETGID,
    MODE_SETUID,
    MODE_STICKY,
    MODE_SYMLINK,
    can_request_data,
    go_file_mode,
    posix_mode,
)
from polybuild.errors import RemoteError

TIMEOUT = 20.0
REQ, DATA, FIN, ERR, STAT = (
    Packet.PACKET_REQ,
    Packet.PACKET_DATA,
    Packet.PACKET_FIN,
    Packet.PACKET_ERR,
    Packet.PACKET_STAT,
)


class OrderValidator:
    """The daemon's rules for a listing (fsutil validator.go and hardlinks.go): clean relative
    paths, parents before children, siblings in strictly increasing byte order, a hard link
    only to a path listed before it."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, bytes]] = [("", b"")]
        self.seen_files: set[str] = set()

    def check(self, st: Stat) -> None:
        path = st.path
        assert path and not path.startswith("/") and os.path.normpath(path) == path, path
        assert ".." not in path.split("/"), path
        parent, _, base = path.rpartition("/")
        while self.stack and self.stack[-1][0] != parent:
            self.stack.pop()
        assert self.stack, f"{path} listed without its parent directory"
        assert base.encode() > self.stack[-1][1], f"changes out of order: {path}"
        self.stack[-1] = (parent, base.encode())
        if st.mode & MODE_DIR:
            self.stack.append((path, b""))
        elif not st.mode & MODE_SYMLINK:
            if st.linkname:
                assert st.linkname in self.seen_files, f"invalid link {path} -> {st.linkname}"
            else:
                self.seen_files.add(path)


@dataclass
class Received:
    stats: list[Stat] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    chunk_sizes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def paths(self) -> list[str]:
        return [st.path for st in self.stats]


class FakeDaemon:
    """The receiving end; `sender_end` is the PacketStream given to send_directory. Every
    packet goes through its wire encoding."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Packet] = asyncio.Queue()
        self.outbox: asyncio.Queue[Packet | None] = asyncio.Queue()
        self.sender_end = _SenderEnd(self)

    async def put(self, packet: Packet | None) -> None:
        await self.outbox.put(None if packet is None else _wire(packet))

    async def next(self) -> Packet:
        return await asyncio.wait_for(self.inbox.get(), TIMEOUT)

    async def receive_all(self, *, request: Callable[[Stat], bool] = lambda st: True) -> Received:
        """The well-behaved receiver: asks for each file as soon as it is listed."""
        received = Received()
        validator = OrderValidator()
        wanted: dict[int, str] = {}
        listing_done = False
        while not listing_done or wanted:
            packet = await self.next()
            if packet.type == STAT:
                assert not listing_done, "STAT after the end of the listing"
                if not packet.HasField("stat"):
                    listing_done = True
                    continue
                validator.check(packet.stat)
                index = len(received.stats)
                received.stats.append(packet.stat)
                st = packet.stat
                if can_request_data(st.mode) and not st.linkname and request(st):
                    wanted[index] = st.path
                    received.contents[st.path] = b""
                    received.chunk_sizes[st.path] = []
                    await self.put(Packet(type=REQ, ID=index))
            elif packet.type == DATA:
                path = wanted[packet.ID]
                if packet.data:
                    received.contents[path] += packet.data
                    received.chunk_sizes[path].append(len(packet.data))
                else:
                    del wanted[packet.ID]
            else:
                raise AssertionError(f"unexpected packet {packet}")
        await self.put(Packet(type=FIN))
        assert (await self.next()).type == FIN
        await self.put(None)
        return received


@dataclass
class _SenderEnd:
    daemon: FakeDaemon

    async def send(self, packet: Packet) -> None:
        await self.daemon.inbox.put(_wire(packet))

    async def receive(self) -> Packet | None:
        return await self.daemon.outbox.get()


def _wire(packet: Packet) -> Packet:
    return Packet.FromString(packet.SerializeToString())


def transfer(root: Path, **filters: tuple[str, ...]) -> Received:
    async def both() -> Received:
        daemon = FakeDaemon()
        sent = asyncio.ensure_future(send_directory(daemon.sender_end, root, **filters))
        received = await daemon.receive_all()
        await asyncio.wait_for(sent, TIMEOUT)
        return received

    return asyncio.run(both())


def materialize(received: Received, dest: Path) -> None:
    """Rebuild the sent tree under `dest` as the daemon would."""
    dest.mkdir()
    for st in received.stats:
        path = dest / st.path
        mode = posix_mode(st.mode)
        if stat.S_ISDIR(mode):
            path.mkdir()
        elif stat.S_ISLNK(mode):
            path.symlink_to(st.linkname)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(path)
        elif st.linkname:
            os.link(dest / st.linkname, path)
        else:
            path.write_bytes(received.contents[st.path])
        for name, value in st.xattrs.items():
            os.setxattr(path, name, value, follow_symlinks=False)
        os.chown(path, st.uid, st.gid, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(path, mode & 0o7777)
    for st in reversed(received.stats):
        os.utime(dest / st.path, ns=(st.modTime, st.modTime), follow_symlinks=False)


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything the transfer must keep of each entry, by path."""
    found: dict[str, tuple[object, ...]] = {}
    first_of: dict[tuple[int, int], str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            what: object = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            what = path.read_bytes()
        else:
            what = None
        link = None
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            link = first_of.setdefault((st.st_dev, st.st_ino), rel)
        xattrs = {
            name: os.getxattr(path, name, follow_symlinks=False)
            for name in os.listxattr(path, follow_symlinks=False)
        }
        found[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, what, link, xattrs)
    return found


def make_files(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Files (`name/` a directory, `name -> target` a symlink) under a new `root`."""
    root.mkdir()
    for name, content in files.items():
        if name.endswith("/"):
            (root / name).mkdir(parents=True, exist_ok=True)
        elif " -> " in name:
            link, target = name.split(" -> ")
            (root / link).parent.mkdir(parents=True, exist_ok=True)
            (root / link).symlink_to(target)
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            (root / name).write_bytes(data)
    return root


def test_a_tree_arrives_whole_in_fsutil_order(tmp_path: Path) -> None:
    root = make_files(
        tmp_path / "src",
        {
            "a/b.txt": "bee",
            "a/deep/x/y/z.txt": "deep",
            "a.txt": "top",
            "empty": "",
            "exec.sh": "#!/bin/sh\n",
            "setuid": "s",
            "sticky/": "",
            "setgid/": "",
            "link-to-file -> a.txt": "",
            "link-outside -> /etc/passwd": "",
            "link-dir -> a": "",
            "hard1": "same inode",
            "ü-name": "unicode",
            "owned": "by someone else",
        },
    )
    os.link(root / "hard1", root / "hard2")
    os.mkfifo(root / "fifo", 0o640)
    os.chmod(root / "exec.sh", 0o755)
    os.chmod(root / "setuid", 0o4755)
    os.chmod(root / "sticky", 0o1777)
    os.chmod(root / "setgid", 0o2750)
    os.chmod(root / "a", 0o750)
    os.chown(root / "owned", 1234, 5678)
    os.setxattr(root / "a.txt", "user.polybuild", b"\x00value")
    os.utime(root / "a.txt", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))

    received = transfer(root)

    assert received.paths == [
        "a",
        "a/b.txt",
        "a/deep",
        "a/deep/x",
        "a/deep/x/y",
        "a/deep/x/y/z.txt",
        "a.txt",
        "empty",
        "exec.sh",
        "fifo",
        "hard1",
        "hard2",
        "link-dir",
        "link-outside",
        "link-to-file",
        "owned",
        "setgid",
        "setuid",
        "sticky",
        "ü-name",
    ]
    by_path = {st.path: st for st in received.stats}
    assert by_path["a.txt"].modTime == 1_700_000_000_123_456_789
    assert by_path["link-outside"].linkname == "/etc/passwd"
    assert "link-outside" not in received.contents  # a symlink is never followed
    # fsutil sends a later hard link with the first one's path (its size is kept)
    assert by_path["hard2"].linkname == "hard1"
    assert by_path["hard2"].size == len("same inode")
    assert by_path["a"].size == 0
    assert by_path["a.txt"].xattrs["user.polybuild"] == b"\x00value"
    # owners go as 0:0, as BuildKit's client resets every local mount's (resetUIDAndGID)
    assert (by_path["owned"].uid, by_path["owned"].gid) == (0, 0)
    assert by_path["setuid"].mode == MODE_SETUID | 0o755
    assert by_path["sticky"].mode == MODE_DIR | MODE_STICKY | 0o777
    assert by_path["setgid"].mode == MODE_DIR | MODE_SETGID | 0o750
    assert by_path["fifo"].mode == MODE_NAMED_PIPE | 0o640
    assert by_path["link-dir"].mode & MODE_SYMLINK
    assert by_path["link-dir"].size == len("a")  # lstat's size of a symlink: its target

    materialize(received, tmp_path / "dest")
    expected = snapshot(root)
    expected["owned"] = (expected["owned"][0], 0, 0, *expected["owned"][3:])  # sent as 0:0
    assert snapshot(tmp_path / "dest") == expected


def test_a_big_file_is_streamed_in_fsutil_sized_chunks(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 123)
    root = make_files(tmp_path / "src", {"big": data, "small": "x"})
    received = transfer(root)
    assert received.contents["big"] == data
    sizes = received.chunk_sizes["big"]
    assert max(sizes) == CHUNK_SIZE
    assert len(sizes) == math.ceil(len(data) / CHUNK_SIZE)


def test_a_socket_is_sent_as_an_empty_regular_file_as_fsutil_does(tmp_path: Path) -> None:
    root = make_files(tmp_path / "src", {"x": "x"})
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))
        received = transfer(root)
    by_path = {st.path: st for st in received.stats}
    assert stat.S_ISREG(posix_mode(by_path["sock"].mode))
    assert received.contents["sock"] == b""


def test_a_symlinked_root_is_resolved_first(tmp_path: Path) -> None:
    make_files(tmp_path / "real", {"f": "content"})
    (tmp_path / "alias").symlink_to("real")
    assert transfer(tmp_path / "alias").contents == {"f": b"content"}


DOCKERIGNORE_TREE = {
    "a.log": "",
    "keep.log": "",
    "sub/c.log": "",
    "sub/keep.log": "",
    "x.txt": "",
    "build/keep": "",
    "build/other": "",
    "build/sub/x": "",
    "node_modules/README.md": "",
    "node_modules/a/README.md": "",
    "node_modules/a/index.js": "",
    "node_modules/b/index.js": "",
    "src/main.c": "",
    "src/main.o": "",
    "src2/y": "",
    "Dockerfile": "",
}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(
            {"exclude": ("*.log", "!keep.log", "build", "node_modules", "src*")},
            ["Dockerfile", "keep.log", "sub", "sub/c.log", "sub/keep.log", "x.txt"],
            id="exclude *.log but !keep.log (top level only, as patternmatcher's *)",
        ),
        pytest.param(
            {"exclude": ("**/*.log", "!**/keep.log", "build", "node_modules", "src*")},
            ["Dockerfile", "keep.log", "sub", "sub/keep.log", "x.txt"],
            id="exclude **/*.log but !**/keep.log",
        ),
        pytest.param(
            {"exclude": ("*", "!build/keep")},
            ["build", "build/keep"],
            id="an excluded directory is sent for its re-included child",
        ),
        pytest.param(
            {"exclude": ("*", "!node_modules/**/README.md")},
            [
                "node_modules",
                "node_modules/README.md",
                "node_modules/a",
                "node_modules/a/README.md",
            ],
            id="a wildcard exception walks excluded directories",
        ),
        pytest.param(
            {"include": ("src", "Dockerfile")},
            ["Dockerfile", "src", "src/main.c", "src/main.o"],
            id="include by prefix",
        ),
        pytest.param(
            {"include": ("**/README.md",)},
            [
                "node_modules",
                "node_modules/README.md",
                "node_modules/a",
                "node_modules/a/README.md",
            ],
            id="include with a wildcard",
        ),
        pytest.param(
            {"include": ("src",), "exclude": ("src/*.o",)},
            ["src", "src/main.c"],
            id="include and exclude",
        ),
        pytest.param({"include": ("",)}, [], id="an include list of empty patterns"),
    ],
)
def test_filters_select_what_buildkit_selects(
    tmp_path: Path, filters: dict[str, tuple[str, ...]], expected: list[str]
) -> None:
    root = make_files(tmp_path / "src", DOCKERIGNORE_TREE)
    received = transfer(root, **filters)
    assert received.paths == expected
    for path, content in received.contents.items():
        assert content == (root / path).read_bytes()


def test_followpaths_bring_in_symlink_targets_inside_the_directory(tmp_path: Path) -> None:
    root = make_files(
        tmp_path / "src",
        {
            "Dockerfile -> docker/Dockerfile.real": "",
            "docker/Dockerfile.real": "FROM scratch",
            "docker/other": "",
            "up -> ../../../etc": "",
            "etc2/passwd": "",
            "other": "",
        },
    )
    received = transfer(root, include=("Dockerfile",), followpaths=("Dockerfile", "up/passwd"))
    # up/passwd resolves to etc/passwd under the root (absent): never outside it
    assert received.paths == ["Dockerfile", "docker", "docker/Dockerfile.real", "up"]
    assert received.contents == {"docker/Dockerfile.real": b"FROM scratch"}


def test_filters_from_metadata_decodes_what_buildkit_encodes() -> None:
    metadata = (
        ("dir-name", "context"),
        ("include-patterns", "a+b%20"),
        ("include-patterns", "c"),
        ("exclude-patterns", "%C3%BC%2A.log"),
        ("exclude-patterns", "x+y"),
        ("exclude-patterns", "%zz"),
        ("exclude-patterns-encoded", "1"),
        ("followpaths", b"Dockerfile"),
        ("x-docker-expose-session-uuid", "abc"),
    )
    assert filters_from_metadata(metadata) == (
        "context",
        ("a+b%20", "c"),  # not flagged: taken as is
        ("ü*.log", "x y", ""),  # Go's QueryUnescape; a bad escape becomes "" as in BuildKit
        ("Dockerfile",),
    )
    assert filters_from_metadata(()) == ("", (), (), ())


@pytest.mark.parametrize(
    ("st_mode", "go_mode"),
    [
        (stat.S_IFREG | 0o644, 0o644),
        (stat.S_IFDIR | 0o755, MODE_DIR | 0o755),
        (stat.S_IFLNK | 0o777, MODE_SYMLINK | 0o777),
        (stat.S_IFIFO | 0o600, MODE_NAMED_PIPE | 0o600),
        (stat.S_IFCHR | 0o666, MODE_DEVICE | MODE_CHAR_DEVICE | 0o666),
        (stat.S_IFBLK | 0o660, MODE_DEVICE | 0o660),
        (stat.S_IFREG | stat.S_ISUID | stat.S_ISGID | 0o755, MODE_SETUID | MODE_SETGID | 0o755),
        (stat.S_IFDIR | stat.S_ISVTX | 0o777, MODE_DIR | MODE_STICKY | 0o777),
    ],
)
def test_go_file_mode_both_ways(st_mode: int, go_mode: int) -> None:
    assert go_file_mode(st_mode) == go_mode
    assert posix_mode(go_mode) == st_mode


# -- a daemon that breaks the protocol or leaves ----------------------------------------


async def _listing(daemon: FakeDaemon) -> list[Stat]:
    stats: list[Stat] = []
    while True:
        packet = await daemon.next()
        assert packet.type == STAT
        if not packet.HasField("stat"):
            return stats
        stats.append(packet.stat)


def _misbehave(root: Path, script: Callable[[FakeDaemon], object]) -> tuple[str, list[Packet]]:
    """Run the sender against `script`; the RemoteError it raised and what it sent after."""

    async def run() -> tuple[str, list[Packet]]:
        daemon = FakeDaemon()
        sent = asyncio.ensure_future(send_directory(daemon.sender_end, root))
        await script(daemon)  # type: ignore[misc]
        with pytest.raises(RemoteError) as caught:
            await asyncio.wait_for(sent, TIMEOUT)
        rest: list[Packet] = []
        while not daemon.inbox.empty():
            rest.append(daemon.inbox.get_nowait())
        return str(caught.value), rest

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("request_of", "message"),
    [
        (lambda stats: [9999], "invalid file id 9999"),
        (lambda stats: [[st.path for st in stats].index("dir")], "invalid file id 0"),
        (lambda stats: [[st.path for st in stats].index("link")], "invalid file id 2"),
        (lambda stats: [1, 1], "file 1 requested twice"),
    ],
    ids=["unknown id", "a directory", "a symlink", "twice"],
)
def test_a_request_for_anything_but_a_listed_file_is_refused(
    tmp_path: Path, request_of: Callable[[list[Stat]], list[int]], message: str
) -> None:
    root = make_files(tmp_path / "src", {"dir/": "", "file": "x", "link -> file": ""})

    async def script(daemon: FakeDaemon) -> None:
        for file_id in request_of(await _listing(daemon)):
            await daemon.put(Packet(type=REQ, ID=file_id))

    error, rest = _misbehave(root, script)
    assert message in error
    errors = [packet for packet in rest if packet.type == ERR]
    assert len(errors) == 1 and message in errors[0].data.decode()


def test_the_daemon_closing_mid_way_ends_the_transfer(tmp_path: Path) -> None:
    root = make_files(tmp_path / "src", {f"f{i}": "x" for i in range(2000)})

    async def script(daemon: FakeDaemon) -> None:
        await daemon.next()
        await daemon.put(None)

    error, _ = _misbehave(root, script)
    assert "closed the file transfer before it ended" in error


def test_the_daemon_s_error_ends_the_transfer_without_an_answer(tmp_path: Path) -> None:
    root = make_files(tmp_path / "src", {"f": "x"})

    async def script(daemon: FakeDaemon) -> None:
        await _listing(daemon)
        await daemon.put(Packet(type=ERR, data=b"disk full"))

    error, rest = _misbehave(root, script)
    assert "disk full" in error
    assert not [packet for packet in rest if packet.type == ERR]


def test_a_file_replaced_after_it_was_listed_is_not_sent(tmp_path: Path) -> None:
    root = make_files(tmp_path / "src", {"f": "listed", "g": "other"})

    async def script(daemon: FakeDaemon) -> None:
        await _listing(daemon)
        os.replace(root / "g", root / "f")
        await daemon.put(Packet(type=REQ, ID=0))

    error, rest = _misbehave(root, script)
    assert "f: it was replaced after it was listed" in error
    assert not [packet for packet in rest if packet.type == DATA and packet.data]


def test_a_missing_directory_is_reported_to_the_daemon(tmp_path: Path) -> None:
    async def script(daemon: FakeDaemon) -> None:
        return None

    error, rest = _misbehave(tmp_path / "nothing", script)
    assert "No such file or directory" in error
    assert [packet.type for packet in rest] == [ERR]


def test_a_hard_link_whose_first_path_is_filtered_out_is_sent_whole(tmp_path: Path) -> None:
    root = make_files(tmp_path / "src", {"a": "shared", "b": "other"})
    os.link(root / "a", root / "c")
    received = transfer(root, exclude=("a",))
    by_path = {st.path: st for st in received.stats}
    assert received.paths == ["b", "c"]
    assert by_path["c"].linkname == ""
    assert received.contents["c"] == b"shared"


def test_fin_before_the_listing_ended_is_a_protocol_violation(tmp_path: Path) -> None:
    root = make_files(tmp_path / "src", {f"f{i}": "x" for i in range(2000)})

    async def script(daemon: FakeDaemon) -> None:
        await daemon.next()
        await daemon.put(Packet(type=FIN))

    error, rest = _misbehave(root, script)
    assert "FIN before the listing ended" in error
    assert [packet.type for packet in rest if packet.type != STAT] == [ERR]
