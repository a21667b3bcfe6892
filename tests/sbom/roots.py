"""Synthetic root file systems for the scanner's tests: each package manager's real files,
written as the tools write them (the rpm database by rpm itself, the Go binary by go build)."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

from tests.conftest import require_tool

DPKG_STATUS = """\
Package: bash
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Multi-Arch: same

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
"""

DISTROLESS_STATUS = """\
Package: libssl3
Version: 3.0.11-1~deb12u2
Architecture: amd64
Source: openssl
"""

APK_INSTALLED = """\
C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
L:MIT
o:musl
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

C:Q1def=
P:busybox-binsh
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
o:busybox
F:bin
R:sh

P:zlib
V:1.3.1-r0
A:x86_64
L:Zlib custom-thing
o:zlib
F:lib
R:libz.so.1
F:usr/share/doc
R:zlib.txt
"""

GO_MAIN = """\
package main

import "example.com/dep"

func main() { println(dep.Hello()) }
"""


def write(path: Path, content: str | bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


def os_release(root: Path, text: str) -> None:
    """As Debian and Fedora ship it: /etc/os-release a link to ../usr/lib/os-release."""
    write(root / "usr/lib/os-release", text)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")


def jar_bytes(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def go_binary(work: Path) -> Path:
    """A real Go executable using one module (example.com/dep, replaced by a local directory)
    and required at v1.4.0 so its build info has a dep line and a => line."""
    go = require_tool("go")
    source = work / "gosrc"
    write(
        source / "go.mod",
        "module example.com/hello\n\ngo 1.19\n\nrequire example.com/dep v1.4.0\n\n"
        "replace example.com/dep v1.4.0 => ./dep\n",
    )
    write(source / "main.go", GO_MAIN)
    write(source / "dep/go.mod", "module example.com/dep\n\ngo 1.19\n")
    write(source / "dep/dep.go", 'package dep\n\nfunc Hello() string { return "hi" }\n')
    output = work / "hello"
    env = {
        **os.environ,
        "GOPATH": str(work / "gopath"),
        "GOCACHE": str(work / "gocache"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
    }
    subprocess.run(
        [go, "build", "-o", str(output), "."], cwd=source, env=env, check=True, capture_output=True
    )
    return output


def rpmdb(work: Path, root: Path) -> None:
    """Build a real noarch package with rpmbuild and record it in root's rpmdb.sqlite with rpm."""
    rpmbuild, rpm = require_tool("rpmbuild"), require_tool("rpm")
    spec = write(
        work / "hello.spec",
        """\
Name: hello-sbom
Version: 1.2
Release: 3.fc40
Epoch: 2
Summary: a test package
License: MIT AND (Apache-2.0 OR BSD-3-Clause)
BuildArch: noarch
%description
A test package.
%install
mkdir -p %{buildroot}/usr/share/hello-sbom
echo hi > %{buildroot}/usr/share/hello-sbom/hello.txt
%files
/usr/share/hello-sbom/hello.txt
""",
    )
    top = work / "rpmtop"
    subprocess.run(
        [
            rpmbuild,
            "-bb",
            "--define",
            f"_topdir {top}",
            "--define",
            "_build_id_links none",
            str(spec),
        ],
        check=True,
        capture_output=True,
    )
    (package,) = (top / "RPMS/noarch").glob("*.rpm")
    subprocess.run(
        [
            rpm,
            "--root",
            str(root),
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--nosignature",
            str(package),
        ],
        check=True,
        capture_output=True,
    )


def debian_root(root: Path, work: Path) -> Path:
    """dpkg (status + .list, status.d), Python, npm, a Go binary and jars."""
    os_release(root, 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    write(root / "var/lib/dpkg/status", DPKG_STATUS)
    write(root / "var/lib/dpkg/info/bash.list", "/.\n/bin\n/bin/bash\n/usr/share/doc/bash\n")
    write(root / "var/lib/dpkg/info/libc6:amd64.list", "/.\n/lib/x86_64-linux-gnu/libc.so.6\n")
    write(root / "var/lib/dpkg/status.d/libssl3", DISTROLESS_STATUS)
    write(root / "var/lib/dpkg/status.d/libssl3.md5sums", "0123  usr/lib/libssl.so.3\n")
    site = root / "usr/lib/python3/dist-packages"
    write(
        site / "Requests_OAuthlib-1.3.1.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: Requests_OAuthlib\nVersion: 1.3.1\nLicense: ISC\n"
        "\nbody\nName: not-this\n",
    )
    write(
        root / "usr/local/lib/python3.11/site-packages/attrs-23.1.0.dist-info/METADATA",
        "Metadata-Version: 2.3\nName: attrs\nVersion: 23.1.0\nLicense-Expression: MIT\n"
        "Classifier: License :: OSI Approved :: Apache Software License\n",
    )
    write(
        site / "six-1.16.0.egg-info/PKG-INFO",
        "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\nLicense: UNKNOWN\n"
        "Classifier: License :: OSI Approved :: MIT License\n",
    )
    modules = root / "app/node_modules"
    write(
        modules / "left-pad/package.json",
        '{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}',
    )
    write(
        modules / "@babel/core/package.json",
        '{"name": "@babel/core", "version": "7.24.0", "license": {"type": "MIT"}}',
    )
    write(
        modules / "left-pad/test/fixture/package.json",
        '{"name": "fixture", "version": "0.0.0"}',
    )
    write(
        modules / "left-pad/node_modules/tiny/package.json",
        '{"name": "tiny", "version": "0.1.0", "licenses": [{"type": "Custom License"}]}',
    )
    write(
        root / "opt/app/lib/commons-lang3-3.14.0.jar",
        jar_bytes(
            {
                "META-INF/MANIFEST.MF": (
                    "Manifest-Version: 1.0\r\nBundle-License: Apache-2.0\r\n\r\n"
                ),
                "META-INF/maven/org.apache.commons/commons-lang3/pom.properties": (
                    "#Generated\ngroupId=org.apache.commons\nartifactId=commons-lang3\nversion=3.14.0\n"
                ),
            }
        ),
    )
    write(
        root / "opt/app/lib/plain.jar",
        jar_bytes(
            {
                "META-INF/MANIFEST.MF": (
                    "Manifest-Version: 1.0\nImplementation-Title: plain-lib\n"
                    "Implementation-Version: 0.9\nImplementation-Vendor-Id: com.example\n\n"
                    "Name: ignored\nImplementation-Version: 9.9\n"
                )
            }
        ),
    )
    hello = go_binary(work)
    write(root / "usr/local/bin/hello", hello.read_bytes(), 0o755)
    return root


def alpine_root(root: Path) -> Path:
    write(root / "etc/os-release", 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n')
    write(root / "lib/apk/db/installed", APK_INSTALLED)
    return root


def fedora_root(root: Path, work: Path) -> Path:
    os_release(root, 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\nID_LIKE=""\n')
    rpmdb(work, root)
    return root
