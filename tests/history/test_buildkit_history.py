"""A build on one BuildKit daemon (the daemon writes the outputs) is recorded as a local
one: its steps from the daemon's progress, the image digest from its exporter's response,
and a failed build's error and step output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.buildkit.conftest import BuildkitDaemon, buildkitd_factory  # noqa: F401 (fixture)
from tests.conftest import import_busybox, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixture)

pytestmark = [pytest.mark.root, pytest.mark.integration]


def test_builds_on_a_buildkit_daemon_are_recorded(
    buildkitd_factory: Callable[..., BuildkitDaemon],  # noqa: F811
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_root()
    root = tmp_path / "root"
    base = f"{registry.host}/library/busybox:history"
    import_busybox(root, ("amd64",), name=base)
    pushed = run_cli(root, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')
    created = run_cli(root, "create", "--name", "bk", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo from the daemon\n")
    meta = tmp_path / "meta.json"
    built = run_cli(
        root,
        "build",
        "--builder",
        "bk",
        "--platform",
        "linux/amd64",
        "--progress",
        "plain",
        "--metadata-file",
        str(meta),
        "-o",
        f"type=oci,dest={tmp_path / 'out.tar'}",
        str(ctx),
    )
    assert built.returncode == 0, built.stderr
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo daemon fails; exit 4\n")
    failed = run_cli(root, "build", "--builder", "bk", "--platform", "linux/amd64", str(ctx))
    assert failed.returncode != 0

    listed = run_cli(root, "history", "ls", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["status"] for r in rows] == ["Error", "Completed"]
    assert all(str(r["ref"]).startswith("bk/") for r in rows)

    shown = run_cli(root, "history", "inspect", "^1", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["Image"] == json.loads(meta.read_text())["containerimage.digest"]
    assert data["Builder"] == "bk"
    assert any("RUN echo from the daemon" in s["Name"] for s in data["Steps"])
    logs = run_cli(root, "history", "logs", "^1")
    assert "from the daemon" in logs.stderr

    text = run_cli(root, "history", "inspect").stdout
    assert "Error:\t\tUnknown " in text and "exit code: 4" in text
    assert "> daemon fails\n" in text
