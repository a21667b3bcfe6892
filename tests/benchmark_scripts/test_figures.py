"""The build benchmark's verdicts from progress streams and timings (benchmarks/build.py,
build_tools.py, scale.py): which vertices count as steps that ran, the ratio against a goal, the
platforms in an OCI tarball, and a curve's slope. No build runs here."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from benchmarks import build, peers, scale
from benchmarks.build_tools import Run, from_rawjson
from benchmarks.workloads import BY_NAME


def rawjson(*vertices: dict[str, object]) -> str:
    return "\n".join(json.dumps({"vertexes": [v]}) for v in vertices) + "\n"


def vertex(name: str, cached: bool = False, completed: bool = True) -> dict[str, object]:
    v: dict[str, object] = {"digest": "sha256:" + name, "name": name, "cached": cached}
    if completed:
        v["completed"] = "2026-01-01T00:00:01Z"
    return v


def test_a_warm_build_counts_only_dockerfile_steps_and_not_from() -> None:
    stream = rawjson(
        vertex("[internal] load build definition from Dockerfile"),
        vertex("[linux/amd64 build 1/2] FROM r/busybox@sha256:x"),
        vertex("[linux/amd64 build 2/2] RUN echo", cached=True),
        vertex("[linux/arm64 stage-1 2/2] COPY --from=build /log /log", cached=True),
        vertex("exporting to oci image format"),
    )
    run = from_rawjson("t", 1.0, 0.5, stream)
    assert (run.vertices, run.steps, run.ran) == (5, 2, ())
    assert len(run.other_uncached) == 3


def test_a_step_that_ran_is_reported() -> None:
    stream = rawjson(vertex("[2/2] COPY . /ctx"), vertex("[2/3] RUN x", completed=False))
    run = from_rawjson("t", 1.0, 0.5, stream)
    assert run.ran == ("[2/2] COPY . /ctx",)
    assert run.steps == 1


def test_no_completed_vertex_is_a_failed_measurement() -> None:
    with pytest.raises(Exception, match="no completed vertex"):
        from_rawjson("t", 1.0, 0.5, "not json\n")


def test_rows_compare_medians_with_the_goal() -> None:
    def run(wall: float) -> Run:
        return Run(wall, wall, 10, 3, (), ())

    figures = build.Figures(
        BY_NAME["big-context"],
        cold={"polybuild": [run(4), run(1), run(2)], "BuildKit": [run(5)]},
        warm={"polybuild": [run(3)], "BuildKit": [run(4)]},
    )
    cold, warm = build.rows([figures], "BuildKit")
    assert (cold.polybuild_s, cold.peer_s, cold.ratio, cold.goal) == (2, 5, 0.4, 0.5)
    assert cold.passed
    assert (warm.ratio, warm.goal, warm.passed) == (0.75, 0.5, False)


def test_oci_platforms_leaves_out_attestations(tmp_path: Path) -> None:
    def entry(p: dict[str, str]) -> dict[str, object]:
        return {"digest": "sha256:m", "platform": p}

    index = {"manifests": [entry({"os": "linux", "architecture": "arm", "variant": "v7"}),
                           entry({"os": "linux", "architecture": "amd64"}),
                           entry({"os": "unknown", "architecture": "unknown"})]}  # fmt: skip
    top = {"manifests": [{"digest": "sha256:i"}]}
    out = tmp_path / "out.tar"
    with tarfile.open(out, "w") as tar:
        for name, doc in (("index.json", top), ("blobs/sha256/i", index)):
            data = json.dumps(doc).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert peers.oci_platforms(out) == ["linux/amd64", "linux/arm/v7"]


def test_a_linear_curve_has_slope_one(capsys: pytest.CaptureFixture[str]) -> None:
    points = [scale.Point(1000, 2.0, 1.0, 0, 0), scale.Point(10_000, 20.0, 1.0, 0, 0)]
    scale.print_curve("files", "files", points)
    last = capsys.readouterr().out.splitlines()[-1].split()
    assert last[:5] == ["10,000", "20.00", "1.00", "1.00", "0.00"]
