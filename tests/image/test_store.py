"""The local image store: names, lookups, listing, removal with gc, platforms, concurrency."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from polybuild.errors import ImageError, ImageNotFoundError, InvalidReferenceError
from polybuild.image.content import ContentStore
from polybuild.image.select import NoMatchingPlatformError
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_image, write_index
from polybuild.platforms import Platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
ARMV7 = Platform("linux", "arm", "v7")
ARMV6 = Platform("linux", "arm", "v6")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ImageStore:
    monkeypatch.setenv("POLYBUILD_ROOT", str(tmp_path / "root"))
    return ImageStore()


def test_store_lives_in_the_data_root(store: ImageStore, tmp_path: Path) -> None:
    assert store.root == tmp_path / "root"
    assert store.content.root == tmp_path / "root" / "content"


def test_tag_and_resolve(store: ImageStore) -> None:
    target = write_index(store.content, [AMD64, ARM64])
    ref = store.tag("busybox", target)
    assert str(ref) == "docker.io/library/busybox:latest"
    for text in (
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        f"busybox@{target.digest}",
        str(target.digest),
        target.digest.hex[:12],
        f"sha256:{target.digest.hex[:6]}",
    ):
        record = store.resolve(text)
        assert record.target == target, text
        assert record.name == ref
    with pytest.raises(ImageNotFoundError, match="no such image: busybox:2"):
        store.resolve("busybox:2")
    with pytest.raises(ImageNotFoundError):
        store.resolve(f"other@{target.digest}")
    with pytest.raises(InvalidReferenceError):
        store.resolve("Not/Valid!")


def test_retagging_moves_the_name(store: ImageStore) -> None:
    first = write_image(store.content, AMD64, {"a": b"1"})
    second = write_image(store.content, AMD64, {"a": b"2"})
    store.tag("app", first)
    store.tag("app", second)
    assert [r.target for r in store.records()] == [second]


def test_tag_refuses_digests_and_missing_blobs(store: ImageStore, tmp_path: Path) -> None:
    target = write_image(store.content, AMD64)
    with pytest.raises(InvalidReferenceError, match="digest"):
        store.tag(f"app@{target.digest}", target)
    elsewhere = write_image(ContentStore(tmp_path / "other"), ARM64)
    with pytest.raises(ImageNotFoundError, match="not stored"):
        store.tag("app", elsewhere)


def test_ambiguous_id_prefix(store: ImageStore) -> None:
    from polybuild.image import mediatypes as mt
    from polybuild.image.descriptor import Descriptor
    from polybuild.image.digest import Digest

    seen: dict[str, bytes] = {}
    n = 0
    while True:  # find two blobs whose digests share 3 hex digits (birthday bound ~ 80 tries)
        data = str(n).encode()
        prefix = Digest.of(data).hex[:3]
        if prefix in seen:
            break
        seen[prefix] = data
        n += 1
    for name, blob in (("one", seen[prefix]), ("two", data)):
        store.tag(name, Descriptor(mt.OCI_MANIFEST, store.content.put(blob), len(blob)))
    with pytest.raises(ImageError, match="ambiguous"):
        store.resolve(prefix)
    assert store.resolve(Digest.of(data).hex[:20]).name == store.resolve("two").name


def test_summaries_list_platforms_and_unique_size(store: ImageStore) -> None:
    index = write_index(store.content, [AMD64, ARM64, ARMV7], {"same": b"x" * 1000})
    store.tag("multi:1", index)
    store.tag("multi:also", index)
    single = write_image(store.content, ARMV6)
    store.tag("single", single)
    summaries = {str(s.record.name): s for s in store.summaries()}
    assert list(summaries) == [
        "docker.io/library/multi:1",
        "docker.io/library/multi:also",
        "docker.io/library/single:latest",
    ]
    multi = summaries["docker.io/library/multi:1"]
    assert multi.platforms == (AMD64, ARM64, ARMV7)
    # identical layer content for all three platforms is counted once
    layer_blobs = {d for d in store.content if store.content.get(d).startswith(b"same")}
    assert len(layer_blobs) == 1
    expected = sum(store.content.size(d) for d in store.content) - sum(
        store.content.size(d) for d in store.content if d in _blobs_of(store, single)
    )
    assert multi.size == expected
    assert summaries["docker.io/library/single:latest"].platforms == (ARMV6,)


def _blobs_of(store: ImageStore, target):  # type: ignore[no-untyped-def]
    from polybuild.image.walk import reachable

    return set(reachable(store.content, [target]).present)


def test_remove_name_keeps_shared_blobs_and_collects_the_rest(store: ImageStore) -> None:
    shared_files = {"base": b"shared layer"}
    a = write_image(store.content, AMD64, shared_files, cmd=("a",))
    b = write_image(store.content, AMD64, shared_files, cmd=("b",))
    store.tag("a", a)
    store.tag("b", b)
    only_a = _blobs_of(store, a) - _blobs_of(store, b)
    removal = store.remove(["a"])
    assert [str(n) for n in removal.untagged] == ["docker.io/library/a:latest"]
    assert removal.deleted == (a.digest,)
    assert removal.blobs_removed == 2  # a's manifest and config; the layer is shared
    assert set(store.content) == _blobs_of(store, b)
    assert not any(store.content.exists(d) for d in only_a)
    store.content.verify(b.digest)


def test_remove_by_id_with_several_names_needs_force(store: ImageStore) -> None:
    target = write_index(store.content, [AMD64, ARM64])
    store.tag("x:1", target)
    store.tag("x:2", target)
    with pytest.raises(ImageError, match="must be forced"):
        store.remove([target.digest.hex[:12]])
    assert len(store.records()) == 2
    # removing one name leaves the blobs in place
    assert store.remove(["x:1"]).deleted == ()
    assert store.content.exists(target.digest)
    removal = store.remove([str(target.digest)], force=True)
    assert removal.deleted == (target.digest,)
    assert list(store.content) == []


def test_unnamed_images(store: ImageStore) -> None:
    target = write_image(store.content, AMD64)
    store.add_unnamed(target)
    store.add_unnamed(target)
    assert [r.name for r in store.records()] == [None]
    assert store.resolve(target.digest.hex[:8]).target == target
    store.tag("now-named", target)
    assert [str(r.name) for r in store.records()] == ["docker.io/library/now-named:latest"]


def test_lease_protects_blobs_not_yet_named(store: ImageStore) -> None:
    keeper = write_image(store.content, AMD64, {"k": b"1"})
    store.tag("keeper", keeper)
    with store.lease():
        pending = write_index(store.content, [ARM64])
        assert store.gc() == (0, 0)
        assert store.content.exists(pending.digest)
    removed, freed = store.gc()
    assert removed == 4 and freed > 0
    assert not store.content.exists(pending.digest)
    assert store.content.exists(keeper.digest)


def test_dead_lease_protects_nothing_and_is_removed(store: ImageStore) -> None:
    pending = write_image(store.content, ARM64)
    leases = store.root / "leases"
    leases.mkdir(parents=True)
    dead = leases / "1.000000-999999-deadbeef"  # a crashed process's lease: not locked
    dead.touch()
    assert store.gc()[0] == 3
    assert not store.content.exists(pending.digest)
    assert not dead.exists()


def test_select_platform_by_containerd_preference(store: ImageStore) -> None:
    index = write_index(store.content, [AMD64, ARMV6, ARMV7])
    store.tag("multi", index)
    assert store.select("multi", AMD64).platform == AMD64
    # arm64 has no exact match: arm/v7 is preferred over arm/v6 whatever the index order
    selected = store.select("multi", ARM64)
    assert selected.platform == ARMV7
    assert selected.config.value.platform == ARMV7
    assert store.select("multi", Platform("linux", "arm", "v6")).platform == ARMV6
    with pytest.raises(NoMatchingPlatformError) as info:
        store.select("multi", Platform("linux", "s390x"))
    assert "linux/s390x" in str(info.value)
    assert "available: linux/amd64, linux/arm/v6, linux/arm/v7" in str(info.value)


def test_select_single_manifest_uses_its_config(store: ImageStore) -> None:
    target = write_image(store.content, ARM64).with_platform(None)
    store.tag("one", target)
    assert store.select("one", ARM64).platform == ARM64
    with pytest.raises(NoMatchingPlatformError, match="available: linux/arm64"):
        store.select("one", AMD64)


_ADDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from polybuild.image.descriptor import Descriptor
    from polybuild.image.store import ImageStore

    store = ImageStore(Path(sys.argv[1]))
    target = Descriptor.from_json(sys.argv[3].encode())
    for n in range(int(sys.argv[4])):
        store.tag(f"{sys.argv[2]}:{n}", target)
    """
)


@pytest.mark.root
def test_two_processes_tagging_at_once_lose_no_update(store: ImageStore) -> None:
    target = write_image(store.content, AMD64)
    count = 60
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _ADDER,
                str(store.root),
                name,
                target.to_json().decode(),
                str(count),
            ]
        )
        for name in ("left", "right")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    names = {str(r.name) for r in store.records()}
    expected = {f"docker.io/library/{side}:{n}" for side in ("left", "right") for n in range(count)}
    assert names == expected
