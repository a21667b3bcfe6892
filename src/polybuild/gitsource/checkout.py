"""A git reference (a build context, an ADD source) checked out with the system `git`: the
commit resolved with `git ls-remote`, fetched once into a cache in the data root, then
checked out into a private directory.

The cache is `<data root>/git/<sha256 of the remote>/`, a bare repository holding, for each
commit a build used, a ref `refs/polybuild/<commit>`: a commit it holds is never fetched
again (content-addressed: the commit is the hash of the tree). A checkout is a repository
of its own (`origin` set to the remote, submodules fetched from theirs) whose `.git`
directories are removed unless asked (BUILDKIT_CONTEXT_KEEP_GIT_DIR=1 or
`?keep-git-dir=true`, as BuildKit). The repository's content is
hostile: git writes the tree itself (symlinks stay symlinks, never followed), the
subdirectory that is the context must resolve inside the checkout, no hook runs, and git
never prompts for credentials. Each failure is a ContextError with git's last stderr line.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from polybuild.errors import ContextError
from polybuild.gitsource.url import GitRef

__all__ = ["GitCheckout", "cache_dir", "check_out", "resolve_commit"]

_VERBS = ("ls-remote", "init", "fetch", "rev-parse", "checkout", "remote", "submodule")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class GitCheckout:
    """Where a checkout went: `directory` is the context (the subdirectory, if one was
    named), `commit` the commit checked out."""

    def __init__(self, directory: Path, commit: str) -> None:
        self.directory = directory
        self.commit = commit


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_CONFIG_PARAMETERS="")
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    env.pop("GIT_INDEX_FILE", None)
    return env


def _git(args: Sequence[str], what: str, *, env: dict[str, str] | None = None) -> str:
    """Run `git ARGS` (no stdin, no hooks); its stdout, or ContextError with its stderr."""
    command = ["git", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false", *args]
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, env=env or _env(), check=False
        )
    except FileNotFoundError:
        raise ContextError(
            f"{what}: git is not installed", hint="install git to build from a git context"
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode(errors="replace").splitlines() if line]
        said = lines[-1] if lines else f"exit status {done.returncode}"
        verb = next((a for a in args if a in _VERBS), "")
        raise ContextError(f"{what}: git {verb} failed: {said}")
    return done.stdout.decode(errors="replace")


def resolve_commit(ref: GitRef, what: str) -> str:
    """The commit `ref` names on its remote (`git ls-remote`); a full commit hash as it is.
    An expected checksum (`?checksum=`) must match the commit's prefix."""
    wanted = ref.ref or "HEAD"
    if _SHA.match(wanted):
        commit = wanted
    else:
        # An annotated tag is listed peeled (NAME^{}) only when that is asked for too.
        listing = _git(["ls-remote", "--", ref.remote, wanted, wanted + "^{}"], what)
        found = _pick(listing, wanted)
        if found is None:
            raise ContextError(f"{what}: the remote has no ref {wanted!r}")
        commit = found
    if ref.checksum and not commit.startswith(ref.checksum):
        raise ContextError(
            f"{what}: expected checksum to match {ref.checksum}, got {commit}",
        )
    return commit


def _pick(listing: str, wanted: str) -> str | None:
    """The commit for `wanted` in ls-remote's output: the exact ref, then a branch, then a
    tag (peeled to its commit), then whatever matched."""
    refs: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        if _SHA.match(sha):
            refs[name] = sha
    for name in (wanted, f"refs/heads/{wanted}", f"refs/tags/{wanted}"):
        if f"{name}^{{}}" in refs:
            return refs[f"{name}^{{}}"]
        if name in refs:
            return refs[name]
    return next(iter(refs.values()), None)


def cache_dir(root: Path, remote: str) -> Path:
    """The cache's bare repository for `remote`."""
    return root / "git" / hashlib.sha256(remote.encode()).hexdigest()


def _has_commit(repo: Path, commit: str) -> bool:
    done = subprocess.run(
        ["git", f"--git-dir={repo}", "cat-file", "-e", f"refs/polybuild/{commit}^{{commit}}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_env(),
        check=False,
    )
    return done.returncode == 0


def _fetch(repo: Path, ref: GitRef, commit: str, what: str) -> None:
    """The commit into the cache, once: by its ref (then checked), else by its hash."""
    repo.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_path = repo.parent / (repo.name + ".lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (repo / "HEAD").is_file():
            _git(["init", "--quiet", "--bare", str(repo)], what)
        if _has_commit(repo, commit):
            return
        git_dir = f"--git-dir={repo}"
        fetch = [git_dir, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--depth=1"]
        target = f"refs/polybuild/{commit}"
        wanted = ref.ref if ref.ref and not _SHA.match(ref.ref) else ""
        if wanted or not ref.ref:
            _git([*fetch, "--", ref.remote, f"+{wanted or 'HEAD'}:{target}"], what)
            got = _git([git_dir, "rev-parse", "--verify", f"{target}^{{commit}}"], what).strip()
            if got == commit:
                return
        _git([*fetch, "--", ref.remote, f"+{commit}:{target}"], what)


def _inside(directory: Path, subdir: str, what: str) -> Path:
    """`subdir` of the checkout, which must be a directory that resolves inside it."""
    if not subdir:
        return directory
    target = Path(os.path.realpath(directory / subdir))
    base = Path(os.path.realpath(directory))
    if target != base and base not in target.parents:
        raise ContextError(f"{what}: subdirectory {subdir!r} leads out of the repository")
    if not target.is_dir():
        raise ContextError(f"{what}: subdirectory {subdir!r} is not a directory")
    return target


def check_out(ref: GitRef, root: Path, dest: Path, what: str, *, keep_git: bool) -> GitCheckout:
    """`ref` checked out into the new directory `dest`, fetched into the cache under the
    data root `root` first unless the cache has its commit; its submodules (unless
    `?submodules=false`) fetched from their remotes, as BuildKit does."""
    commit = resolve_commit(ref, what)
    repo = cache_dir(root, ref.remote)
    _fetch(repo, ref, commit, what)
    dest.mkdir(mode=0o700)
    _git(["init", "--quiet", str(dest)], what)
    _git(["-C", str(dest), "fetch", "--quiet", "--no-tags", "--", str(repo),
          f"refs/polybuild/{commit}"], what)  # fmt: skip
    _git(["-C", str(dest), "checkout", "--quiet", commit], what)
    _git(["-C", str(dest), "remote", "add", "origin", ref.remote], what)
    if ref.submodules is not False and (dest / ".gitmodules").is_file():
        # Relative submodule URLs resolve against origin; git itself refuses file:// and
        # ext:: submodules (protocol.file.allow=user), so a hostile .gitmodules cannot
        # reach this machine's repositories.
        _git(["-C", str(dest), "submodule", "update", "--init", "--recursive", "--depth=1"],
             what)  # fmt: skip
    if not keep_git:
        _remove_git_dirs(dest)
    return GitCheckout(_inside(dest, ref.subdir, what), commit)


def _remove_git_dirs(top: Path) -> None:
    """Every `.git` (the repository's, and each submodule's gitfile): git never checks a
    tracked path out under that name, so each is git's own."""
    for directory, dirs, files in os.walk(top):
        if ".git" in dirs:
            dirs.remove(".git")
            shutil.rmtree(Path(directory, ".git"))
        elif ".git" in files:
            Path(directory, ".git").unlink()
