"""`build --call targets` lists the stages as BuildKit's own frontend does: the same text
(buildx prints the frontend's result.txt) and the same targets in its JSON, compared with a
real buildkitd v0.32.2 (`buildctl ... --opt requestid=frontend.targets`)."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from tests.buildkit.conftest import buildkitd, buildkitd_factory  # noqa: F401
from tests.conftest import SHARED, run_cli

BUILDCTL = SHARED / "tools" / "buildkit" / "buildctl"
DOCKERFILES = {
    "two": "# build compiles the thing\nFROM --platform=$BUILDPLATFORM scratch AS build\n"
    "COPY . /\n\n# release is what ships\nFROM scratch AS release\nCOPY --from=build / /x\n",
    "unnamed": "FROM scratch\nCOPY . /\n",
    "mixed": "# base: not a doc comment (no space after the name)\nFROM scratch AS base\n"
    "# other words first\nFROM base AS tools\nFROM scratch\n",
}


def buildkit_targets(address: str, directory: Path, *extra: str) -> str:
    assert BUILDCTL.is_file(), f"buildctl is not at {BUILDCTL} (../shared/tools/buildkit)"
    done = subprocess.run(
        [str(BUILDCTL), "--addr", address, "build", "--frontend", "dockerfile.v0",
         "--local", f"context={directory}", "--local", f"dockerfile={directory}",
         "--opt", "requestid=frontend.targets", *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.root
@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_targets_match_buildkits(
    buildkitd: str,  # noqa: F811 (the daemon's address)
    tmp_path: Path,
    name: str,
) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILES[name])
    ours = run_cli(tmp_path / "root", "build", "--call", "targets", str(tmp_path))
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == buildkit_targets(buildkitd, tmp_path)
    as_json = run_cli(tmp_path / "root", "build", "--call", "targets,format=json", str(tmp_path))
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)  # buildctl prints only result.txt: checked here
    assert base64.b64decode(document["sources"][0]) == DOCKERFILES[name].encode()
    names = [t.get("name", "") for t in document["targets"]]
    assert [t.get("default", False) for t in document["targets"]][-1] is True
    assert len(names) == DOCKERFILES[name].count("FROM ")
