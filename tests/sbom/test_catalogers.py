"""Each cataloger on a root file system written as its package manager writes it: every
package with its exact purl, version, declared licence and evidence files."""

from __future__ import annotations

from polybuild.sbom import Distro, Inventory
from tests.sbom.conftest import by_purl

STATUS = "/var/lib/dpkg/status"
SITE = "/usr/lib/python3/dist-packages"
BIN = ("/usr/local/bin/hello",)


def test_dpkg_installed_packages_with_their_list_files(debian: Inventory) -> None:
    found = {k: v for k, v in by_purl(debian).items() if k.startswith("pkg:deb/")}
    assert found == {
        "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12": (
            "bash", "5.2.15-2+b2", "",
            (STATUS, "/var/lib/dpkg/info/bash.list"),
            ("/bin", "/bin/bash", "/usr/share/doc/bash"),
        ),
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc": (
            "libc6", "2.36-9+deb12u4", "",
            (STATUS, "/var/lib/dpkg/info/libc6:amd64.list"),
            ("/lib/x86_64-linux-gnu/libc.so.6",),
        ),
        "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12": (
            "tzdata", "2024a-0+deb12u1", "", (STATUS,), (),
        ),
        # distroless: one stanza file per package, no Status field; .md5sums beside it ignored
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl": (
            "libssl3", "3.0.11-1~deb12u2", "", ("/var/lib/dpkg/status.d/libssl3",), (),
        ),
    }  # fmt: skip
    assert debian.distro == Distro("debian", "12")  # /etc/os-release is a link: read at /usr/lib


def test_python_distributions(debian: Inventory) -> None:
    found = {k: v[:4] for k, v in by_purl(debian).items() if k.startswith("pkg:pypi/")}
    assert found == {
        "pkg:pypi/requests-oauthlib@1.3.1": (
            "Requests_OAuthlib", "1.3.1", "ISC",
            (f"{SITE}/Requests_OAuthlib-1.3.1.dist-info/METADATA",),
        ),
        "pkg:pypi/attrs@23.1.0": (  # License-Expression wins over the classifiers
            "attrs", "23.1.0", "MIT",
            ("/usr/local/lib/python3.11/site-packages/attrs-23.1.0.dist-info/METADATA",),
        ),
        "pkg:pypi/six@1.16.0": (  # License: UNKNOWN -> the classifier
            "six", "1.16.0", "MIT", (f"{SITE}/six-1.16.0.egg-info/PKG-INFO",),
        ),
    }  # fmt: skip


def test_npm_packages_scoped_and_nested_but_not_fixtures(debian: Inventory) -> None:
    found = {k: v[:4] for k, v in by_purl(debian).items() if k.startswith("pkg:npm/")}
    modules = "/app/node_modules"
    assert found == {
        "pkg:npm/left-pad@1.3.0": (
            "left-pad", "1.3.0", "WTFPL", (f"{modules}/left-pad/package.json",),
        ),
        "pkg:npm/%40babel/core@7.24.0": (
            "@babel/core", "7.24.0", "MIT", (f"{modules}/@babel/core/package.json",),
        ),
        "pkg:npm/tiny@0.1.0": (
            "tiny", "0.1.0", "Custom License",
            (f"{modules}/left-pad/node_modules/tiny/package.json",),
        ),
    }  # fmt: skip


def test_go_binary_build_info(debian: Inventory) -> None:
    found = {k: v[:4] for k, v in by_purl(debian).items() if k.startswith("pkg:golang/")}
    go_version = next(p.version for p in debian.packages if p.name == "stdlib")
    assert go_version.startswith("go1.")
    assert found == {
        "pkg:golang/example.com/hello@%28devel%29": ("example.com/hello", "(devel)", "", BIN),
        # required at v1.4.0 but replaced by a directory: its code has no version
        "pkg:golang/example.com/dep@%28devel%29": ("example.com/dep", "(devel)", "", BIN),
        f"pkg:golang/stdlib@{go_version.removeprefix('go')}": (
            "stdlib",
            go_version,
            "BSD-3-Clause",
            BIN,
        ),
    }


def test_java_archives(debian: Inventory) -> None:
    found = {k: v[:4] for k, v in by_purl(debian).items() if k.startswith("pkg:maven/")}
    assert found == {
        "pkg:maven/org.apache.commons/commons-lang3@3.14.0": (
            "commons-lang3", "3.14.0", "Apache-2.0", ("/opt/app/lib/commons-lang3-3.14.0.jar",),
        ),
        # no pom.properties: the manifest's main section (not the per-entry one after it)
        "pkg:maven/com.example/plain-lib@0.9": (
            "plain-lib", "0.9", "", ("/opt/app/lib/plain.jar",),
        ),
    }  # fmt: skip


def test_evidence_files_have_digests(debian: Inventory) -> None:
    evidence = {path for p in debian.packages for path in p.evidence}
    assert {d.path for d in debian.digests} == evidence
    assert all(len(d.sha1) == 40 and len(d.sha256) == 64 for d in debian.digests)
    assert debian.warnings == ()


def test_apk_database(alpine: Inventory) -> None:
    db = ("/lib/apk/db/installed",)
    assert by_purl(alpine) == {
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1": (
            "musl", "1.2.4_git20230717-r4", "MIT", db,
            ("/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"),
        ),
        "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1"
        "&upstream=busybox": (
            "busybox-binsh", "1.36.1-r15", "GPL-2.0-only", db, ("/bin/sh",),
        ),
        "pkg:apk/alpine/zlib@1.3.1-r0?arch=x86_64&distro=alpine-3.19.1": (
            "zlib", "1.3.1-r0", "Zlib custom-thing", db,
            ("/lib/libz.so.1", "/usr/share/doc/zlib.txt"),
        ),
    }  # fmt: skip


def test_rpm_database_written_by_rpm(fedora: Inventory) -> None:
    assert by_purl(fedora) == {
        "pkg:rpm/fedora/hello-sbom@1.2-3.fc40?arch=noarch&distro=fedora-40&epoch=2"
        "&upstream=hello-sbom-1.2-3.fc40.src.rpm": (
            "hello-sbom", "2:1.2-3.fc40", "MIT AND (Apache-2.0 OR BSD-3-Clause)",
            ("/var/lib/rpm/rpmdb.sqlite",), ("/usr/share/hello-sbom/hello.txt",),
        )
    }  # fmt: skip
