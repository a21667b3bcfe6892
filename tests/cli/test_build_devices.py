"""`RUN --device` with CDI specs and `--allow device`: the device node, its environment and
its cgroup rule reach the step's container; an ungranted device stops the build first."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_root
from tests.conftest import run_cli as polybuild

pytestmark = pytest.mark.root  # needs root: containers, mounts, device cgroups

# /dev/loop-control (10:237) is not among the devices every container may open, so opening it
# proves the device's cgroup rule was added; opening it changes nothing.
SPEC = """\
cdiVersion: "0.6.0"
kind: "example.com/test"
devices:
- name: loopctl
  containerEdits:
    env: [PB_DEVICE=injected]
    deviceNodes:
    - path: /dev/pbtest
      hostPath: /dev/loop-control
"""

DOCKERFILE = """\
FROM busybox
RUN --device=example.com/test=loopctl,required \\
    sh -c 'test -c /dev/pbtest && : < /dev/pbtest && echo "$PB_DEVICE" > /out'
RUN sh -c 'test ! -e /dev/pbtest && echo gone > /after'
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    if not Path("/dev/loop-control").exists():
        pytest.fail("this test needs /dev/loop-control (the loop module) on the host")
    data = tmp_path_factory.mktemp("cli-devices") / "root"
    import_busybox(data)
    return data


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    specs = tmp_path / "cdi"
    specs.mkdir()
    (specs / "test.yaml").write_text(SPEC)
    return {"POLYBUILD_CDI_SPEC_DIRS": str(specs)}


def test_granted_device_is_in_the_step_and_only_there(
    root: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    out = tmp_path / "out"
    proc = polybuild(root, "build", "--allow", "device", "--progress", "plain",
                     "-o", f"type=local,dest={out}", str(tmp_path), env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (out / "out").read_text() == "injected\n"
    assert (out / "after").read_text() == "gone\n"
    assert "RUN --device=example.com/test=loopctl,required" in proc.stderr
    # the same grant, by name
    proc = polybuild(root, "build", "--allow", "device=example.com/test=loopctl",
                     "--no-cache", "-o", f"type=local,dest={tmp_path / 'o2'}", str(tmp_path),
                     env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_ungranted_or_unknown_devices_stop_the_build(
    root: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    proc = polybuild(root, "build", str(tmp_path), env=env)
    assert proc.returncode == 2, proc.stderr
    assert "device example.com/test=loopctl is requested by the build but not allowed" in (
        proc.stderr
    )
    assert "--allow device" in proc.stderr
    proc = polybuild(root, "build", "--allow", "device", str(tmp_path),
                     env={"POLYBUILD_CDI_SPEC_DIRS": str(tmp_path / "none")})  # fmt: skip
    assert proc.returncode == 2
    assert 'required device "example.com/test=loopctl" is not registered' in proc.stderr
    proc = polybuild(root, "build", "--allow", "device=x,colour=red", str(tmp_path), env=env)
    assert proc.returncode == 2 and "unknown device config key" in proc.stderr
