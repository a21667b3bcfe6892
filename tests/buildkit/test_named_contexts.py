"""`--build-context` on a BuildKit node: a name in FROM / COPY --from replaced by a local
directory (sent over the session under its own name) or by an image (`docker-image://`),
as buildx passes them to the dockerfile frontend. polybuild's own nodes take them too
(tests/imagebuild/test_named_context_*.py), overriding a stage of that name as BuildKit."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.errors import UsageError
from polybuild.imagebuild.build_contexts import NamedContext, parse_build_contexts
from tests.buildkit.conftest import BuildkitDaemon
from tests.buildkit.test_build_on_daemon import daemon_with_base  # noqa: F401 (a fixture)
from tests.conftest import run_cli
from tests.registry.conftest import registry  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def named_daemon(
    daemon_with_base: tuple[BuildkitDaemon, str, Path],  # noqa: F811
) -> tuple[Path, str]:
    daemon, base, root = daemon_with_base
    created = run_cli(root, "create", "--name", "bknamed", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    return root, base


@pytest.mark.root
@pytest.mark.integration
def test_named_contexts_replace_an_image_and_a_stage(
    named_daemon: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = named_daemon
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM nosuch.example/base:1\n"
        "COPY --from=extra hello.txt /hello.txt\n"
        "COPY --from=context2 main.txt /main.txt\n"
    )
    (ctx / "main.txt").write_text("main context\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "hello.txt").write_text("from the named context\n")
    (extra / "secret.txt").write_text("never asked for\n")
    out = tmp_path / "fs"
    done = run_cli(root, "build", "--builder", "bknamed", "--platform", "linux/amd64",
                   "--build-context", f"nosuch.example/base:1=docker-image://{base}",
                   "--build-context", f"extra={extra}",
                   "--build-context", f"context2={ctx}",
                   "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "hello.txt").read_text() == "from the named context\n"
    assert (out / "main.txt").read_text() == "main context\n"
    assert (out / "bin" / "busybox").is_file()  # the image the name was replaced by
    assert not (out / "secret.txt").exists()


@pytest.mark.root
@pytest.mark.integration
def test_polybuilds_own_nodes_take_image_and_directory_named_contexts(
    named_daemon: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = named_daemon
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM nosuch.example/base AS x\nRUN false\nFROM x\nCOPY --from=x /bin/busybox /bb\n"
    )
    # An image name stands for an image here too (it overrides a stage of that name).
    out = tmp_path / "fs"
    here = run_cli(root, "build", "--builder", "default", "--platform", "linux/amd64",
                   "--build-context", f"x=docker-image://{base}",
                   "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
    assert here.returncode == 0, here.stderr
    assert (out / "bb").is_file() and (out / "bin" / "busybox").is_file()
    # A directory named x is x's root file system (the stage, RUN false included, never runs).
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "bin").mkdir()
    (tmp_path / "d" / "bin" / "busybox").write_text("not busybox\n")
    out = tmp_path / "fs2"
    here = run_cli(root, "build", "--builder", "default", "--platform", "linux/amd64",
                   "--build-context", f"x={tmp_path / 'd'}",
                   "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
    assert here.returncode == 0, here.stderr
    assert (out / "bb").read_text() == "not busybox\n"


def test_build_context_values_are_parsed_as_buildx_parses_them(tmp_path: Path) -> None:
    parsed = parse_build_contexts(
        [f"a={tmp_path}", "b=docker-image://r.test/x:1", "c=https://h.test/r.git#main"]
    )
    assert parsed == (
        NamedContext("a", str(tmp_path), tmp_path),
        NamedContext("b", "docker-image://r.test/x:1"),
        NamedContext("c", "https://h.test/r.git#main"),
    )
    assert [n.kind for n in parsed] == ["local", "docker-image", "remote"]
    for bad, words in (
        ("noequals", "expected NAME=VALUE"),
        (f"a={tmp_path / 'missing'}", "is not a directory"),
        ("a=target:x", "come from bake"),
    ):
        with pytest.raises(UsageError, match=words):
            parse_build_contexts([bad])
    with pytest.raises(UsageError, match="given twice"):
        parse_build_contexts([f"a={tmp_path}", f"a={tmp_path}"])


@pytest.mark.root
@pytest.mark.integration
def test_add_host_goes_to_the_daemons_frontend(
    named_daemon: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = named_daemon
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN cat /etc/hosts > /h\n")
    out = tmp_path / "fs"
    done = run_cli(root, "build", "--builder", "bknamed", "--platform", "linux/amd64",
                   "--add-host", "db:10.1.2.3", "-o", f"type=local,dest={out}",
                   str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "10.1.2.3\tdb" in (out / "h").read_text()
