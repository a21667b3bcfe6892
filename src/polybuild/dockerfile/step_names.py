"""RUN and COPY/ADD steps named as BuildKit's dockerfile2llb names them: the instruction with
its flags (`RUN --mount=type=cache,target=/root/.cache make`), variables expanded
(`COPY . /src/$X` shows `/src/hi`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from polybuild.dockerfile import instructions as ins
from polybuild.dockerfile.shell import expand_display


def run_name(c: ins.Run, env: Mapping[str, str], escape: str = "\\") -> str:
    """`RUN [--mount=...]... [--network=N] [--security=S] COMMAND`, flags as written, the
    variables `env` sets expanded (BuildKit's processCmdEnv: quotes kept, unset ones not)."""
    flags = [f"--mount={m}" for m in c.mounts]
    if c.network != "default":
        flags.append(f"--network={c.network}")
    if c.security != "sandbox":
        flags.append(f"--security={c.security}")
    flags += [f"--device={d}" for d in c.devices]
    return expand_display(" ".join(("RUN", *flags, *c.cmd)), env, escape=escape)


def copy_name(c: ins.Copy, expand: Callable[[str], str]) -> str:
    """`COPY|ADD [flags] SOURCES DEST`, every word expanded as the step uses it."""
    flags = [f"--from={expand(c.from_)}"] if c.from_ else []
    flags += [f"--chown={expand(c.chown)}"] if c.chown else []
    flags += [f"--chmod={expand(c.chmod)}"] if c.chmod else []
    flags += ["--link"] if c.link else []
    flags += ["--parents"] if c.parents else []
    flags += [f"--exclude={expand(e)}" for e in c.exclude]
    flags += [f"--checksum={expand(c.checksum)}"] if c.checksum else []
    if c.keep_git_dir is not None:
        flags.append(f"--keep-git-dir={str(c.keep_git_dir).lower()}")
    if c.unpack is not None:
        flags.append(f"--unpack={str(c.unpack).lower()}")
    heredocs = [f"<<{d.path}" for d in c.contents]
    words = [expand(s) for s in c.sources]
    return " ".join(("ADD" if c.is_add else "COPY", *flags, *words, *heredocs, expand(c.dest)))


__all__ = ["copy_name", "run_name"]
