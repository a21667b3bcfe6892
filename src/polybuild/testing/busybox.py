"""Tiny busybox root filesystems per architecture, from Debian's busybox-static packages.

Tests and the demo need real multi-architecture base images without Docker Hub. The
packages come from `../shared/fixtures/debs` when present (checked against SHA256SUMS), or
are downloaded with apt into a private cache without enabling foreign architectures on the
host (`fetch_debs`).
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from polybuild.errors import FixtureError
from polybuild.platforms import Platform, format_platform

# Debian architecture -> OCI platform
DEBIAN_ARCHES: dict[str, Platform] = {
    "amd64": Platform("linux", "amd64"),
    "arm64": Platform("linux", "arm64"),
    "armhf": Platform("linux", "arm", "v7"),
    "armel": Platform("linux", "arm", "v6"),
    "i386": Platform("linux", "386"),
    "ppc64el": Platform("linux", "ppc64le"),
    "s390x": Platform("linux", "s390x"),
}
PACKAGE = "busybox-static"

# Applets linked into /bin; enough for shell scripts in tests and the demo.
APPLETS = [
    "[",
    "[[",
    "ash",
    "awk",
    "basename",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "dd",
    "df",
    "dirname",
    "du",
    "echo",
    "env",
    "expr",
    "false",
    "find",
    "grep",
    "gzip",
    "head",
    "hostname",
    "id",
    "install",
    "kill",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mktemp",
    "mv",
    "nproc",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "rmdir",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "tail",
    "tar",
    "tee",
    "test",
    "touch",
    "tr",
    "true",
    "uname",
    "uniq",
    "wc",
    "which",
    "whoami",
    "xargs",
    "yes",
]

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def repo_root() -> Path:
    """The project checkout this module lives in (src/polybuild/testing -> repo)."""
    return Path(__file__).resolve().parents[3]


def shared_debs_dir() -> Path:
    return repo_root().parent / "shared" / "fixtures" / "debs"


def cache_dir() -> Path:
    return Path(os.environ.get("POLYBUILD_FIXTURES", repo_root() / "fixtures-cache"))


def deb_name(debian_arch: str) -> str:
    return f"{PACKAGE}-{debian_arch}.deb"


def _sums(directory: Path) -> dict[str, str]:
    sums_file = directory / "SHA256SUMS"
    if not sums_file.exists():
        return {}
    pairs = (line.split() for line in sums_file.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_deb(debian_arch: str) -> Path:
    """The verified busybox-static .deb for `debian_arch`, from shared/ or the local cache."""
    for directory in (shared_debs_dir(), cache_dir()):
        path = directory / deb_name(debian_arch)
        if not path.exists():
            continue
        expected = _sums(directory).get(path.name)
        if expected and _sha256(path) != expected:
            raise FixtureError(f"{path}: checksum does not match {directory}/SHA256SUMS")
        return path
    raise FixtureError(
        f"no {deb_name(debian_arch)} in {shared_debs_dir()} or {cache_dir()}",
        hint="run scripts/setup (it fetches the packages with apt), or "
        "python -m polybuild.testing.busybox fetch",
    )


def fetch_debs(arches: list[str] | None = None, dest: Path | None = None) -> list[Path]:
    """Download busybox-static for each architecture with apt into `dest` (the cache).

    apt runs with a private state and list directory and APT::Architectures set only for
    this call, so the host's dpkg never gets foreign architectures enabled; a failing
    index for one architecture does not stop the others.
    """
    arches = arches or list(DEBIAN_ARCHES)
    dest = dest or cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    todo = [a for a in arches if not (dest / deb_name(a)).exists()]
    if todo:
        with tempfile.TemporaryDirectory(prefix="polybuild-apt-") as tmp:
            state = Path(tmp)
            (state / "lists" / "partial").mkdir(parents=True)
            (state / "archives" / "partial").mkdir(parents=True)
            options = [
                "-o",
                f"APT::Architectures={','.join(sorted(set(todo) | {'amd64'}))}",
                "-o",
                f"Dir::State::Lists={state / 'lists'}",
                "-o",
                f"Dir::Cache::Archives={state / 'archives'}",
                "-o",
                f"Dir::Cache::pkgcache={state / 'pkgcache.bin'}",
                "-o",
                f"Dir::Cache::srcpkgcache={state / 'srcpkgcache.bin'}",
                "-o",
                "Debug::NoLocking=1",
                "-o",
                "APT::Sandbox::User=root",
            ]
            # Exit status 100 when one index fails is expected; what matters is the download.
            subprocess.run(["apt-get", *options, "-qq", "update"], check=False)
            for arch in todo:
                subprocess.run(
                    ["apt-get", *options, "-qq", "download", f"{PACKAGE}:{arch}"],
                    cwd=state,
                    check=False,
                )
                found = sorted(state.glob(f"{PACKAGE}_*_{arch}.deb"))
                if found:
                    shutil.move(str(found[-1]), dest / deb_name(arch))
    with open(dest / "SHA256SUMS", "w") as f:
        for deb in sorted(dest.glob(f"{PACKAGE}-*.deb")):
            f.write(f"{_sha256(deb)}  {deb.name}\n")
    missing = [a for a in arches if not (dest / deb_name(a)).exists()]
    if missing:
        raise FixtureError(f"could not download {PACKAGE} for: {', '.join(missing)}")
    return [dest / deb_name(a) for a in arches]


def _deb_data_tar(deb: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an ar archive), opened for reading."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise FixtureError(f"{deb}: not a Debian package")
    offset = 8
    while offset + 60 <= len(blob):
        header = blob[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        data = blob[offset + 60 : offset + 60 + size]
        if name.startswith("data.tar"):
            if name.endswith(".xz"):
                data = lzma.decompress(data)
            return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
        offset += 60 + size + (size % 2)
    raise FixtureError(f"{deb}: no data.tar member")


def make_rootfs(debian_arch: str, dest: Path) -> Path:
    """Build a busybox root filesystem for `debian_arch` in `dest` (created; must be empty)."""
    dest.mkdir(parents=True, exist_ok=True)
    with _deb_data_tar(find_deb(debian_arch)) as tar:
        member = tar.getmember("./bin/busybox")
        extracted = tar.extractfile(member)
        if extracted is None:
            raise FixtureError(f"{debian_arch}: bin/busybox is not a file")
        (dest / "bin").mkdir(exist_ok=True)
        (dest / "bin" / "busybox").write_bytes(extracted.read())
    (dest / "bin" / "busybox").chmod(0o755)
    for applet in APPLETS:
        link = dest / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    for directory in ("dev", "proc", "sys", "etc", "root", "var", "usr/bin", "tmp"):
        (dest / directory).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    (dest / "root").chmod(0o700)
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    return dest


def make_rootfs_tar(debian_arch: str, dest: Path) -> Path:
    """A root filesystem tarball (for `polybuild import`) for `debian_arch`."""
    with tempfile.TemporaryDirectory(prefix="polybuild-busybox-") as tmp:
        root = make_rootfs(debian_arch, Path(tmp) / "rootfs")
        with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(root.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return dest


def main(argv: list[str] | None = None) -> int:
    """`python -m polybuild.testing.busybox fetch|list|tar ARCH OUT.tar`.

    fetch: download the packages (when ../shared is absent); list: show them; tar: write a
    busybox root filesystem tarball for a Debian architecture (for `polybuild import`).
    """
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["tar"] and len(args) == 3:
        print(make_rootfs_tar(args[1], Path(args[2])))
        return 0
    if args[:1] == ["fetch"]:
        if shared_debs_dir().exists():
            print(f"using {shared_debs_dir()}")
            return 0
        for path in fetch_debs(args[1:] or None):
            print(path)
        return 0
    for arch, platform in DEBIAN_ARCHES.items():
        print(f"{arch}\t{format_platform(platform)}\t{find_deb(arch)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
