"""`polybuild du` and `prune --builder` on a BuildKit daemon node: its cache records after a
build, then none once pruned; this machine's node shows what its data root keeps."""

from __future__ import annotations

from pathlib import Path

from tests.buildkit.conftest import BuildkitDaemon
from tests.buildkit.test_build_on_daemon import daemon_with_base  # noqa: F401 (a fixture)
from tests.conftest import run_cli
from tests.registry.conftest import registry  # noqa: F401 (a fixture)


def total(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("Total:")).split()[-1]


def test_du_and_prune_act_on_the_daemon(
    daemon_with_base: tuple[BuildkitDaemon, str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    daemon, base, root = daemon_with_base
    assert run_cli(root, "create", "--name", "bkdu", "--driver", "remote",
                   daemon.address).returncode == 0  # fmt: skip
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN head -c 300000 /dev/zero > /blob\n")
    built = run_cli(root, "build", "--builder", "bkdu", "--platform", "linux/amd64",
                    "-o", f"type=oci,dest={tmp_path / 'o.tar'}", str(ctx))  # fmt: skip
    assert built.returncode == 0, built.stderr
    used = run_cli(root, "du", "--builder", "bkdu")
    assert used.returncode == 0, used.stderr
    assert used.stdout.startswith("ID "), used.stdout  # buildx's one table for all nodes
    assert total(used.stdout) != "0B"
    verbose = run_cli(root, "du", "--builder", "bkdu", "--verbose").stdout
    assert "\nReclaimable:  true\n" in verbose and "\nDescription:  " in verbose, verbose
    assert "\nType:         regular\n" in verbose and "\nCreated at:   20" in verbose, verbose
    # --filter goes to the daemon as buildx sends it; no summary after a filtered table
    regular = run_cli(root, "du", "--builder", "bkdu", "--filter", "type=regular").stdout
    rows = regular.splitlines()[1:]
    assert rows and not any(line.startswith(("Total:", "Reclaimable:")) for line in rows)
    none = run_cli(root, "du", "--builder", "bkdu", "--filter", "type=source.git.checkout")
    assert none.stdout.splitlines() == ["ID        RECLAIMABLE   SIZE      LAST ACCESSED"]
    described = run_cli(root, "du", "--builder", "bkdu", "--filter", "description~=300000")
    assert len(described.stdout.splitlines()) == 2, described.stdout  # the RUN step's record
    kept = run_cli(root, "prune", "--builder", "bkdu", "--all", "--force",
                   "--filter", "until=1h", "--verbose")  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    assert f"bkdu0 ({daemon.address}): removed 0 cache records" in kept.stdout, kept.stdout
    assert total(run_cli(root, "du", "--builder", "bkdu").stdout) != "0B"  # used just now
    pruned = run_cli(root, "prune", "--builder", "bkdu", "--all", "--force")
    assert pruned.returncode == 0, pruned.stderr
    assert f"bkdu0 ({daemon.address}): removed " in pruned.stdout
    assert "Removed " not in pruned.stdout  # this machine's cache is not this builder's
    assert total(run_cli(root, "du", "--builder", "bkdu").stdout) == "0B"
    here = run_cli(root, "du").stdout  # the default builder: this machine's data root
    assert here.startswith("ID ") and "\nTotal:" in here, here
