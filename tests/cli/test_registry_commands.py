"""`polybuild pull`, `push` and `imagetools inspect|create` against the in-memory registry (the
commands' transport= seam), as any user: what they print and what reaches the registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from polybuild.cli.imagetools import CreateOptions, InspectOptions, run_create, run_inspect
from polybuild.cli.pull import PullOptions, run_pull
from polybuild.cli.push import PushOptions, run_push
from polybuild.image.content import ContentStore
from polybuild.image.reference import parse
from polybuild.image.testing import write_index
from polybuild.platforms import Platform
from polybuild.registry import push
from polybuild.testing.registry import FakeRegistry

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")
IMAGE = "registry.test/team/app:1"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    """A fake registry holding a two-platform IMAGE; the commands use a fresh local root."""
    monkeypatch.setenv("POLYBUILD_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("POLYBUILD_CONFIG", str(tmp_path / "polybuild.toml"))
    (tmp_path / "polybuild.toml").write_text("")
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    fake = FakeRegistry("registry.test")
    content = ContentStore(tmp_path / "source" / "content")
    target = write_index(content, [AMD, ARM])
    asyncio.run(push(content, target, [parse(IMAGE)], transport=fake))
    return fake


def test_pull_then_push_to_another_name(
    registry: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    run_pull(PullOptions(IMAGE, all_platforms=True), transport=registry)
    printed = capsys.readouterr().out
    assert "linux/amd64: sha256:" in printed and "linux/arm64: sha256:" in printed
    assert printed.rstrip().endswith(IMAGE)

    run_push(PushOptions(IMAGE, ("registry.test/team/copy:2",), quiet=True), transport=registry)
    digest = registry.manifest("team/app", "1")
    assert registry.manifest("team/copy", "2") == digest
    assert capsys.readouterr().out.startswith("digest: sha256:")


def test_imagetools_inspect_raw_and_create(
    registry: FakeRegistry, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    run_inspect(InspectOptions(IMAGE, raw=True), transport=registry)
    stored = registry.manifest("team/app", "1")
    assert stored is not None and capsysbinary.readouterr().out == stored[1]

    run_create(
        CreateOptions((IMAGE,), ("registry.test/team/arm:1",), platforms=("linux/arm64",)),
        transport=registry,
    )
    assert registry.manifest("team/arm", "1") is not None
    assert registry.count("PUT", "/blobs/uploads/") == 4  # only the first push uploaded
