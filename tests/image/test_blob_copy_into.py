"""BlobReader.copy_into: the whole blob, verified, into files, pipes and in-memory streams
alike; nothing reaches a pipe or a buffer before the blob is verified, and a large blob's copy
into a file (a temporary the exporters discard on error) raises when its hash is wrong."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from polybuild.errors import DigestMismatchError
from polybuild.exporters.destination import open_file_dest
from polybuild.image.content import ContentStore
from polybuild.image.digest import Digest

DATA = os.urandom(3 << 20) + b"tail"


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


def test_into_a_file_a_pipe_and_memory(store: ContentStore, tmp_path: Path) -> None:
    digest = store.put(DATA)
    with open(tmp_path / "out", "wb") as f:
        f.write(b"head")  # the blob goes at the file's position
        with store.open(digest) as reader:
            assert reader.copy_into(f) == len(DATA)
    assert (tmp_path / "out").read_bytes() == b"head" + DATA
    memory = io.BytesIO()
    with store.open(digest) as reader:
        reader.copy_into(memory)
    assert memory.getvalue() == DATA
    r, w = os.pipe()
    got: list[bytes] = []
    reader_thread = threading.Thread(target=lambda: got.append(_drain(r)))
    reader_thread.start()
    with os.fdopen(w, "wb") as out, store.open(digest) as reader:
        reader.copy_into(out)
    reader_thread.join()
    assert got == [DATA]


def _drain(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_a_corrupt_blob_writes_nothing(store: ContentStore, tmp_path: Path) -> None:
    digest = store.put(DATA)
    path = store.path(digest)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"X")
    out = tmp_path / "out"
    with open(out, "wb") as f, store.open(digest) as reader, pytest.raises(DigestMismatchError):
        reader.copy_into(f)
    assert out.read_bytes() == b""


BIG = os.urandom(9 << 20)  # over copy_into's threshold for hashing beside the copy


def _corrupt(store: ContentStore, data: bytes) -> Digest:
    digest = store.put(data)
    path = store.path(digest)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(len(data) - 1000)
        f.write(b"X" if data[-1000:-999] != b"X" else b"Y")
    return digest


def test_a_large_blob_into_a_file_is_copied_and_verified(
    store: ContentStore, tmp_path: Path
) -> None:
    digest = store.put(BIG)
    with open(tmp_path / "out", "wb") as f:
        f.write(b"head")
        with store.open(digest) as reader:
            assert reader.copy_into(f) == len(BIG)
    assert (tmp_path / "out").read_bytes() == b"head" + BIG


def test_a_corrupt_large_blob_raises_and_its_archive_is_never_written(
    store: ContentStore, tmp_path: Path
) -> None:
    digest = _corrupt(store, BIG)
    memory = io.BytesIO()
    with store.open(digest) as reader, pytest.raises(DigestMismatchError):
        reader.copy_into(memory)
    assert memory.getvalue() == b""  # a buffer (or a pipe) gets nothing
    with (
        open(tmp_path / "raw", "wb") as f,
        store.open(digest) as reader,
        pytest.raises(DigestMismatchError),
    ):
        reader.copy_into(f)
    dest = tmp_path / "image.tar"
    with (
        pytest.raises(DigestMismatchError),
        open_file_dest(str(dest), io.BytesIO()) as out,
        store.open(digest) as reader,
    ):
        out.write(b"tar header")
        reader.copy_into(out)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw", "store"]  # no temporary left


def test_an_empty_blob(store: ContentStore) -> None:
    digest = store.put(b"")
    memory = io.BytesIO()
    with store.open(digest) as reader:
        assert reader.copy_into(memory) == 0
    assert memory.getvalue() == b""


def test_memory_stays_small_for_a_large_blob(store: ContentStore, tmp_path: Path) -> None:
    """The blob is mapped a window at a time: a 256 MiB export adds little to the RSS."""
    import subprocess
    import sys

    with store.writer() as writer:
        chunk = os.urandom(1 << 20)
        for _ in range(256):
            writer.write(chunk)
    assert writer.digest is not None
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from polybuild.image.content import ContentStore\n"
        "from polybuild.image.digest import Digest\n"
        f"store = ContentStore(Path({str(store.root)!r}), clean_temp=False)\n"
        f"d = Digest.parse({str(writer.digest)!r})\n"
        # the peak is reset first: a forked child starts with its parent's (pytest's) peak
        "Path('/proc/self/clear_refs').write_text('5')\n"
        f"with open({str(tmp_path / 'out')!r}, 'wb') as f, store.open(d) as r:\n"
        "    r.copy_into(f)\n"
        "status = Path('/proc/self/status').read_text().splitlines()\n"
        "print(next(int(x.split()[1]) for x in status if x.startswith('VmHWM:')) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert int(done.stdout) < 120, f"peak RSS {done.stdout.strip()} MiB"
    assert (tmp_path / "out").stat().st_size == 256 << 20
