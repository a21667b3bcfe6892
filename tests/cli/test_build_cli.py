"""`polybuild build` flags that need no containers: --print graph, refused flags, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_root
from tests.conftest import run_cli as polybuild

pytestmark = pytest.mark.root  # needs root: containers, mounts, binfmt_misc

SEED = """\
FROM --platform=$BUILDPLATFORM busybox AS build
RUN echo "built once" > /log
FROM busybox
COPY --from=build /log /log
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    data = tmp_path_factory.mktemp("cli-build") / "root"
    import_busybox(data)
    return data


def test_graph_dump_prints_shared_build_stage_digest(root: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(SEED)
    proc = polybuild(
        root,
        "build",
        "--platform",
        "linux/amd64,linux/arm64,linux/arm/v7",
        "--print",
        "graph",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    build_stage = re.findall(r"\[0\] build FROM .* -> ([0-9a-f]{12})", proc.stderr)
    final_stage = re.findall(r"\[1\] stage-1 \(target\) FROM .* -> ([0-9a-f]{12})", proc.stderr)
    assert len(build_stage) == 3 and len(set(build_stage)) == 1
    assert len(final_stage) == 3 and len(set(final_stage)) == 3
    assert polybuild(root, "images", "-q").stdout.count("\n") == 1  # nothing was built


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cache-to", "type=s3,region=x"], "cache type s3"),
        (["--cache-from", "type=nope,ref=x"], "unknown cache type 'nope'"),
        (["--cgroup-parent", "x"], "--cgroup-parent is not supported"),
        (["--provenance", "mode=huge"], 'invalid mode "huge"'),
        (["--attest", "type=nope"], 'unknown attestation type "nope"'),
        (["--sbom", "generator"], "invalid value generator"),
        (["--platform", "linux/arm/v7/x"], "invalid platform"),
        (["-o", "type=nope"], 'unknown type "nope"'),
        (["--call", "nope"], "nope"),
    ],
)
def test_refused_flags_are_one_clear_line(
    root: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "Dockerfile").write_text(SEED)
    proc = polybuild(root, "build", *args, str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_context_and_dockerfile(root: Path, tmp_path: Path) -> None:
    proc = polybuild(root, "build", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "not found" in proc.stderr
    proc = polybuild(root, "build", str(tmp_path))
    assert proc.returncode == 2 and "failed to read dockerfile" in proc.stderr


def test_insecure_run_needs_the_entitlement(root: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN --security=insecure true\n")
    proc = polybuild(root, "build", str(tmp_path))
    assert proc.returncode == 2
    assert "--security=insecure is not allowed" in proc.stderr
    assert "--allow security.insecure" in proc.stderr
    proc = polybuild(root, "build", "--allow", "bogus", str(tmp_path))
    assert proc.returncode == 2 and "unknown entitlement 'bogus'" in proc.stderr


def test_labels_local_platform_and_docker_default_platform(root: Path, tmp_path: Path) -> None:
    import json
    import tarfile

    from polybuild.platforms import default_platform, format_platform

    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    out = tmp_path / "o.tar"
    here = format_platform(default_platform())
    done = polybuild(root, "build", "--label", "empty", "--label", "set=1", "--platform",
                     "local", "-o", f"type=oci,dest={out}", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr

    def config() -> dict[str, object]:
        with tarfile.open(out) as tar:

            def blob(digest: str) -> bytes:
                return tar.extractfile("blobs/" + digest.replace(":", "/")).read()  # type: ignore[union-attr]

            entry = json.loads(tar.extractfile("index.json").read())["manifests"][0]  # type: ignore[union-attr]
            assert entry["platform"]["architecture"] == here.split("/")[1]
            manifest = json.loads(blob(entry["digest"]))
            return dict(json.loads(blob(manifest["config"]["digest"])))

    assert config()["config"]["Labels"] == {"empty": "", "set": "1"}  # type: ignore[index]
    arm = polybuild(root, "build", "--print", "graph", str(tmp_path),
                    env={"DOCKER_DEFAULT_PLATFORM": "linux/arm64"})  # fmt: skip
    assert arm.returncode == 0, arm.stderr
    assert "target platform: linux/arm64\n" in arm.stderr, arm.stderr


def test_quiet_prints_the_image_id_as_buildx(root: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /hi\n")
    iid = tmp_path / "iid"
    one = polybuild(root, "build", "-q", "--platform", "linux/amd64", "--iidfile", str(iid),
                    "-o", f"type=oci,dest={tmp_path / 'one.tar'}", str(tmp_path))  # fmt: skip
    assert one.returncode == 0, one.stderr
    assert one.stdout == iid.read_text() + "\n"  # the config digest, no newline in the file
    assert one.stdout.startswith("sha256:") and one.stderr == ""
    both = polybuild(root, "build", "--progress", "quiet", "--platform", "linux/amd64,linux/arm64",
                     "--metadata-file", str(tmp_path / "m.json"),
                     "-o", f"type=oci,dest={tmp_path / 'both.tar'}", str(tmp_path))  # fmt: skip
    assert both.returncode == 0, both.stderr
    import json

    index = json.loads((tmp_path / "m.json").read_text())["containerimage.digest"]
    assert both.stdout == index + "\n"
    none = polybuild(root, "build", "--progress", "none", "--platform", "linux/amd64",
                     "-o", f"type=oci,dest={tmp_path / 'n.tar'}", str(tmp_path))  # fmt: skip
    assert (none.returncode, none.stdout) == (0, "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-q", "--progress", "plain"], "progress=plain and quiet cannot be used together"),
        (["--iidfile", "IID", "-o", "type=local,dest=out"],
         "local and tar exporters are incompatible with image ID file"),
    ],
)  # fmt: skip
def test_quiet_and_iidfile_refusals(
    root: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    iid = tmp_path / "IID"
    iid.write_text("stale")
    argv = [str(iid) if a == "IID" else a for a in args]
    proc = polybuild(root, "build", *argv, str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_a_failed_build_leaves_no_stale_iidfile(root: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    iid = tmp_path / "iid"
    iid.write_text("sha256:stale")
    proc = polybuild(root, "build", "--iidfile", str(iid), str(tmp_path))
    assert proc.returncode != 0
    assert not iid.exists()


def test_legacy_docker_build_flags_are_accepted_with_a_notice(root: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    proc = polybuild(root, "build", "--rm", "--force-rm", "--compress", "--squash",
                     "--isolation", "default", "-m", "2g", "--cpu-quota", "50000",
                     "--print", "graph", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: experimental flag squash is removed with BuildKit." in proc.stderr
    assert "WARNING: isolation flag is deprecated with BuildKit." in proc.stderr
    assert "WARNING: --rm is accepted and ignored" in proc.stderr
    assert "WARNING: --memory: polybuild does not limit build containers' resources" in proc.stderr
    assert "WARNING: --cpu-quota:" in proc.stderr


def test_add_host_reaches_run_steps_and_their_cache_keys(root: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN cat /etc/hosts > /h\n")

    def hosts(*flags: str) -> str:
        out = tmp_path / "fs"
        done = polybuild(root, "build", "--platform", "linux/amd64", *flags,
                         "-o", f"type=local,dest={out}", str(tmp_path))  # fmt: skip
        assert done.returncode == 0, done.stderr
        return (out / "h").read_text()

    assert "10.1.2.3\tdb\n" in hosts("--add-host", "db:10.1.2.3", "--add-host", "v6=fd00::1")
    assert "fd00::1\tv6\n" in hosts("--add-host", "db:10.1.2.3", "--add-host", "v6=fd00::1")
    assert "10.1.2.3" not in hosts()  # another key: the step ran again without the entry
    bad = polybuild(root, "build", "--add-host", "db:not-an-ip", str(tmp_path))
    assert bad.returncode == 2 and "invalid IP address 'not-an-ip'" in bad.stderr


def test_buildkit_multi_platform_makes_an_index_for_one_platform(
    root: Path, tmp_path: Path
) -> None:
    import json
    import tarfile

    (tmp_path / "Dockerfile").write_text("FROM busybox\n")

    def top(*flags: str) -> dict[str, object]:
        out = tmp_path / "o.tar"
        done = polybuild(root, "build", "--platform", "linux/amd64", *flags,
                         "-o", f"type=oci,dest={out}", str(tmp_path))  # fmt: skip
        assert done.returncode == 0, done.stderr
        with tarfile.open(out) as tar:
            entry = json.loads(tar.extractfile("index.json").read())["manifests"][0]  # type: ignore[union-attr]
            blob = tar.extractfile("blobs/" + entry["digest"].replace(":", "/"))
            return dict(json.loads(blob.read()))  # type: ignore[union-attr]

    assert "layers" in top()  # one platform: the manifest itself
    index = top("--build-arg", "BUILDKIT_MULTI_PLATFORM=1")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    # an index, so buildx's default provenance goes in it (as BuildKit's oci exporter puts it)
    entry, attestation = index["manifests"]  # type: ignore[misc]
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert attestation["annotations"]["vnd.docker.reference.digest"] == entry["digest"]


def test_ulimit_and_shm_size_reach_run_steps(root: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN ulimit -n > /n; ulimit -Hn > /hn; df -k /dev/shm | tail -1 > /shm\n"
    )
    out = tmp_path / "fs"
    done = polybuild(root, "build", "--platform", "linux/amd64",
                     "--ulimit", "nofile=1024:2048", "--shm-size", "128m",
                     "-o", f"type=local,dest={out}", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "n").read_text() == "1024\n"
    assert (out / "hn").read_text() == "2048\n"
    assert (out / "shm").read_text().split()[1] == str(128 * 1024)  # 1K-blocks
    for flags, words in (
        (("--ulimit", "nofiles=1"), "NAME one of"),
        (("--ulimit", "nofile=10:5"), "soft limit 10 exceeds hard limit 5"),
        (("--shm-size", "lots"), "expected a size such as 64m"),
    ):
        bad = polybuild(root, "build", *flags, str(tmp_path))
        assert bad.returncode == 2 and words in bad.stderr, bad.stderr
