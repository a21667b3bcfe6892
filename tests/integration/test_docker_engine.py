"""`--load` and `-o type=docker` (no dest) into a running Docker Engine, as buildx does, against
Debian's dockerd started privately (tests/integration/dockerd.py); polybuild's image store
keeps the image too, and a build without an engine touches no engine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from polybuild.errors import DockerEngineError, ImageNotFoundError
from polybuild.exporters.docker_engine import EngineAddress, detect_engine, engine_address
from polybuild.image import ImageStore
from polybuild.platforms import format_platform
from polybuild.platforms import parse as parse_platform
from tests.conftest import import_busybox, require_platforms, require_tool
from tests.conftest import run_cli as polybuild
from tests.integration.dockerd import DockerEngine, start_dockerd

pytestmark = [pytest.mark.root, pytest.mark.integration]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    started = start_dockerd(tmp_path_factory.mktemp("dockerd") / "engine")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A polybuild root holding busybox for amd64 and arm64."""
    path = tmp_path_factory.mktemp("engine-root") / "root"
    import_busybox(path, ("amd64", "arm64"))
    return path


def _context(tmp_path: Path, text: str) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM busybox\nRUN echo {text} > /x\n")
    return context


def docker(engine: DockerEngine, *args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI talking to `engine` only."""
    require_tool("docker")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        env={**env, **engine.env},
        timeout=120,
        check=False,
    )


def _no_engine_env() -> dict[str, str]:
    return {"DOCKER_HOST": ""}


def config_digest(root: Path, name: str, platform: str | None = None) -> str:
    """The image ID polybuild's store gives `name` (for one platform of it)."""
    store = ImageStore(root)
    wanted = parse_platform(platform) if platform else None
    return str(store.select(name, wanted).manifest.value.config.digest)


def engine_image(engine: DockerEngine, name: str) -> dict[str, object] | None:
    proc = docker(engine, "image", "inspect", name)
    if proc.returncode != 0:
        assert "No such image" in proc.stderr, proc.stderr
        return None
    found = json.loads(proc.stdout)
    assert len(found) == 1
    image: dict[str, object] = found[0]
    return image


def run_in_engine(engine: DockerEngine, name: str) -> str:
    proc = docker(engine, "run", "--rm", "--network", "none", name, "cat", "/x")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("output", [["--load"], ["-o", "type=docker"]], ids=["load", "docker"])
def test_build_loads_into_the_engine_and_the_store(
    engine: DockerEngine, root: Path, tmp_path: Path, output: list[str]
) -> None:
    tag = f"app-{output[-1].replace('=', '-').strip('-')}:1"
    context = _context(tmp_path, f"built-for {tag}")
    proc = polybuild(root, "build", *output, "-t", tag, "-q", str(context), env=engine.env)
    assert proc.returncode == 0, proc.stderr
    image_id = proc.stdout.strip()
    assert image_id == config_digest(root, tag)  # polybuild's own store has it
    loaded = engine_image(engine, tag)
    assert loaded is not None, f"{tag} is not in the engine"
    assert loaded["Id"] == image_id
    assert loaded["RepoTags"] == [tag]
    assert loaded["Architecture"] == "amd64" and loaded["Os"] == "linux"
    assert run_in_engine(engine, tag) == f"built-for {tag}\n"


def test_unnamed_load_is_loaded_by_id(engine: DockerEngine, root: Path, tmp_path: Path) -> None:
    context = _context(tmp_path, "unnamed")
    proc = polybuild(root, "build", "--load", "-q", str(context), env=engine.env)
    assert proc.returncode == 0, proc.stderr
    image_id = proc.stdout.strip()
    loaded = engine_image(engine, image_id)
    assert loaded is not None and loaded["Id"] == image_id
    assert loaded["RepoTags"] == []
    assert run_in_engine(engine, image_id) == "unnamed\n"


@pytest.mark.qemu
def test_several_platforms_load_the_engines_one(
    engine: DockerEngine, root: Path, tmp_path: Path
) -> None:
    require_platforms("linux/arm64")
    context = _context(tmp_path, "multi")
    args = ["build", "--load", "--platform", "linux/arm64,linux/amd64", "-t", "multi:1"]
    proc = polybuild(root, *args, "--progress=quiet", str(context), env=engine.env)
    assert proc.returncode == 0, proc.stderr
    assert (
        f"WARNING: the Docker Engine at {engine.host} (linux/amd64) gets linux/amd64 only; "
        "linux/arm64 stay in polybuild's image store (buildx refuses to load several "
        "platforms: docker exporter does not currently support exporting manifest lists)"
    ) in proc.stderr
    store = ImageStore(root)
    assert {str(p) for p in store.platforms(store.resolve("multi:1").target)} == {
        "linux/amd64",
        "linux/arm64",
    }
    loaded = engine_image(engine, "multi:1")
    assert loaded is not None
    assert loaded["Id"] == config_digest(root, "multi:1", "linux/amd64")
    assert loaded["Architecture"] == "amd64"
    assert run_in_engine(engine, "multi:1") == "multi\n"


def test_without_an_engine_the_store_only(engine: DockerEngine, root: Path, tmp_path: Path) -> None:
    context = _context(tmp_path, "store-only")
    proc = polybuild(
        root, "build", "--load", "-t", "alone:1", "-q", str(context), env=_no_engine_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == config_digest(root, "alone:1")
    assert engine_image(engine, "alone:1") is None


def test_an_unreachable_engine_fails_before_building(root: Path, tmp_path: Path) -> None:
    context = _context(tmp_path, "never")
    host = f"unix://{tmp_path / 'no-engine.sock'}"
    proc = polybuild(
        root, "build", "--load", "-t", "never:1", str(context), env={"DOCKER_HOST": host}
    )
    assert proc.returncode == 1
    assert f"ERROR: Docker Engine at {host}: cannot connect:" in proc.stderr
    assert "unset DOCKER_HOST" in proc.stderr
    assert "RUN echo never" not in proc.stderr  # nothing was built
    with pytest.raises(ImageNotFoundError):
        ImageStore(root).resolve("never:1")


def test_a_refused_image_names_the_engine(engine: DockerEngine, root: Path, tmp_path: Path) -> None:
    # A classic Linux engine refuses a Windows image; polybuild's store keeps it.
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY x /x\n")
    (context / "x").write_text("x\n")
    args = ["build", "--load", "--platform", "windows/amd64", "-t", "win:1", str(context)]
    proc = polybuild(root, *args, env=engine.env)
    assert proc.returncode == 1, proc.stderr
    assert (
        f"ERROR: Docker Engine at {engine.host} refused the image: "
        "cannot load windows image on linux"
    ) in proc.stderr
    assert config_digest(root, "win:1", "windows/amd64")
    assert engine_image(engine, "win:1") is None


def test_the_default_socket_is_the_engine_when_it_answers(engine: DockerEngine) -> None:
    sock = Path(engine.host.removeprefix("unix://"))
    found = detect_engine({}, default_socket=sock)
    assert found is not None
    assert found.address == engine.host
    assert format_platform(found.platform) == "linux/amd64"
    # DOCKER_HOST wins over the default socket.
    assert engine_address({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, sock) == EngineAddress(
        "tcp://127.0.0.1:2375", explicit=True
    )


def test_a_socket_nothing_answers_on_is_no_engine_unless_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))  # the file exists; connecting is refused (no listen)
        assert engine_address({}, path) == EngineAddress(f"unix://{path}", explicit=False)
        assert detect_engine({}, default_socket=path) is None
        with pytest.raises(DockerEngineError, match=f"^Docker Engine at unix://{path}: cannot"):
            detect_engine({"DOCKER_HOST": f"unix://{path}"}, default_socket=path)
    assert engine_address({}, tmp_path / "absent.sock") is None
