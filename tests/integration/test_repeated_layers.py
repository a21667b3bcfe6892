"""Two steps that make the same layer (`RUN echo x` twice: the same empty layer) stack
under a later step: overlayfs takes each layer directory once (it refused the repeat with
ELOOP), and what the repeated layer holds is still there."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.snapshot.snapshotter import distinct_lowers
from tests.conftest import import_busybox, require_root, run_cli


def test_a_layer_is_kept_at_its_topmost_place(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert distinct_lowers([a, b, a, c, b]) == [a, c, b]
    assert distinct_lowers([a, a]) == [a]
    assert distinct_lowers([]) == []


@pytest.mark.root
@pytest.mark.integration
def test_repeated_layers_build_and_keep_their_files(tmp_path: Path) -> None:
    require_root()
    root = tmp_path / "root"
    import_busybox(root, ("amd64",))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN echo x\nRUN echo x\n"
        "RUN echo one > /f\nRUN rm /f\nRUN echo one > /f\nRUN cat /f > /g\n"
    )
    out = tmp_path / "fs"
    done = run_cli(root, "build", "--platform", "linux/amd64",
                   "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "f").read_text() == "one\n" and (out / "g").read_text() == "one\n"
