"""The content store: atomic, verified writes and reads, and survival of a killed writer."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from polybuild.errors import BlobNotFoundError, DigestMismatchError
from polybuild.image.content import ContentStore
from polybuild.image.digest import Digest

MiB = 1 << 20


def test_put_get_exists_size_delete(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest = store.put(b"hello")
    assert digest == Digest.of(b"hello")
    assert store.exists(digest)
    assert store.get(digest) == b"hello"
    assert store.size(digest) == 5
    assert store.path(digest) == tmp_path / "blobs" / "sha256" / digest.hex
    assert list(store) == [digest]
    assert store.delete(digest)
    assert not store.exists(digest)
    assert not store.delete(digest)
    with pytest.raises(BlobNotFoundError):
        store.get(digest)
    with pytest.raises(BlobNotFoundError):
        store.size(digest)


def test_blob_with_wrong_digest_is_refused_and_never_stored(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    claimed = Digest.of(b"what it should be")
    with pytest.raises(DigestMismatchError, match="refused"):
        store.put(b"something else", claimed)
    assert not store.exists(claimed)
    assert list(store) == []
    assert list((tmp_path / "ingest").iterdir()) == []


def test_put_of_existing_digest_still_checks_the_bytes(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest = store.put(b"real")
    with pytest.raises(DigestMismatchError):
        store.put(b"fake", digest)
    assert store.get(digest) == b"real"


def test_streaming_writer_verifies_size_and_digest(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = os.urandom(3 * MiB)
    digest = Digest.of(data)
    with store.writer(digest, len(data)) as writer:
        for offset in range(0, len(data), MiB):
            writer.write(data[offset : offset + MiB])
    assert writer.digest == digest
    assert store.get(digest) == data

    # longer than promised: refused at the write that overflows
    with pytest.raises(DigestMismatchError, match="larger"), store.writer(None, 4) as writer:
        writer.write(b"12345")
    # shorter than promised: refused on commit
    with pytest.raises(DigestMismatchError, match="expected 10"), store.writer(None, 10) as w:
        w.write(b"12345")
    assert set(store) == {digest}
    assert list((tmp_path / "ingest").iterdir()) == []


def test_exception_inside_writer_discards_the_blob(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(RuntimeError), store.writer() as writer:
        writer.write(b"partial")
        raise RuntimeError("network dropped")
    assert list(store) == []
    assert list((tmp_path / "ingest").iterdir()) == []


def test_corrupt_blob_is_detected_on_read(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = b"x" * 100_000
    digest = store.put(data)
    path = store.path(digest)
    path.chmod(0o644)
    path.write_bytes(b"y" + data[1:])
    with pytest.raises(DigestMismatchError, match="corrupt"):
        store.get(digest)
    with pytest.raises(DigestMismatchError):
        store.verify(digest)
    with store.open(digest) as reader, pytest.raises(DigestMismatchError):
        while reader.read(4096):
            pass
    path.write_bytes(data + b"extra")
    with pytest.raises(DigestMismatchError):
        store.verify(digest)


def test_blobs_are_read_only_files(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest = store.put(b"data")
    assert store.path(digest).stat().st_mode & 0o777 == 0o444


def test_gc_temp_removes_abandoned_partials_but_not_live_ones(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    (tmp_path / "ingest").mkdir(exist_ok=True)
    stale = tmp_path / "ingest" / "123-dead.partial"
    stale.write_bytes(b"half a blob")
    with store.writer() as live:
        live.write(b"in progress")
        assert store.gc_temp() == 1
        assert not stale.exists()
        assert live.temp_path.exists()
    assert store.exists(Digest.of(b"in progress"))


# A writer that streams 200 MiB of deterministic data, reporting progress on stdout so the
# test can kill it while the blob is half written. After the halfway mark it slows down,
# like a slow network pull, so the kill lands mid-write rather than after the commit.
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from polybuild.image.content import ContentStore
    from polybuild.image.digest import Digest

    root, expected, total_mib = Path(sys.argv[1]), Digest.parse(sys.argv[2]), int(sys.argv[3])
    store = ContentStore(root)
    chunk = bytes(range(256)) * 4096
    with store.writer(expected, total_mib * len(chunk)) as writer:
        for n in range(total_mib):
            writer.write(chunk)
            if n == total_mib // 2:
                print("half", flush=True)
            if n > total_mib // 2:
                time.sleep(0.02)
    print("committed", flush=True)
    """
)


@pytest.mark.root
@pytest.mark.slow
def test_killed_writer_leaves_no_partial_or_wrong_blob(tmp_path: Path) -> None:
    total_mib = 200
    chunk = bytes(range(256)) * 4096
    hasher = hashlib.sha256()
    for _ in range(total_mib):
        hasher.update(chunk)
    expected = Digest("sha256", hasher.hexdigest())

    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path), str(expected), str(total_mib)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "half"
    partials = list((tmp_path / "ingest").glob("*.partial"))
    assert len(partials) == 1 and partials[0].stat().st_size >= (total_mib // 2) * MiB
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    child.stdout.close()

    store = ContentStore(tmp_path, clean_temp=False)
    assert not store.exists(expected)
    assert not store.path(expected).exists()
    assert list(store) == []  # nothing visible: no partial blob under any digest
    with pytest.raises(BlobNotFoundError):
        store.get(expected)
    # the killed writer's temp file is garbage that the next store open removes
    assert partials[0].exists()
    ContentStore(tmp_path)
    assert list((tmp_path / "ingest").iterdir()) == []

    # and the same blob can then be written in full
    started = time.monotonic()
    with store.writer(expected, total_mib * len(chunk)) as writer:
        for _ in range(total_mib):
            writer.write(chunk)
    assert store.exists(expected)
    store.verify(expected)
    assert time.monotonic() - started < 120


def test_writing_a_blob_again_repairs_a_corrupt_copy(tmp_path: Path) -> None:
    from polybuild.errors import DigestMismatchError
    from polybuild.image.content import ContentStore

    store = ContentStore(tmp_path / "content")
    data = b"the real bytes" * 100
    digest = store.put(data)
    path = store.path(digest)
    path.chmod(0o644)
    path.write_bytes(b"bit rot" * 10)
    with pytest.raises(DigestMismatchError):
        store.verify(digest)
    with store.writer(digest, len(data)) as writer:
        writer.write(data)
    store.verify(digest)
    assert store.get(digest) == data
