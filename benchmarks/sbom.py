"""SBOM scan benchmark (issue 16): polybuild's own scanner (polybuild.sbom.scan_rootfs) on a
generated root file system, and the SPDX document written from its result.

Run from the repository root (root is not needed):
  .venv/bin/python -m benchmarks.sbom [--files 50000] [--trials 3] [--json F]

The root holds --files regular files: a dpkg status of 300 installed packages with a .list
file each, 200 Python dist-infos (METADATA + RECORD), 2,000 npm packages (package.json +
index.js) and plain files for the rest, 100 to a directory. Each trial runs the scan in a
fresh child process that does nothing else, and reports its wall and CPU time for the scan,
the SPDX document's time and size, and the child's peak RSS: VmHWM, the peak of the process
image exec made (ru_maxrss is printed too, but Linux carries it over exec from the forked
parent, so under a large parent such as pytest it shows the parent's peak); a child that
only imports the scanner gives the RSS the interpreter and imports account for.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DPKG_PACKAGES = 300
DIST_INFOS = 200
NPM_PACKAGES = 2_000


def generate(root: Path, files: int) -> int:
    """Write the root file system; returns the number of regular files written."""
    written = 0

    def write(path: Path, text: str) -> None:
        nonlocal written
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written += 1

    stanzas = []
    for index in range(DPKG_PACKAGES):
        name = f"libbench{index}"
        stanzas.append(
            f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n"
            f"Version: 1.{index}-1\nSource: bench{index % 40}\nDescription: package {index}\n"
            " a longer description\n .\n of the package\n"
        )
        write(
            root / f"var/lib/dpkg/info/{name}:amd64.list",
            "/.\n" + "".join(f"/usr/lib/{name}/file{i}\n" for i in range(20)),
        )
    write(root / "var/lib/dpkg/status", "\n".join(stanzas))
    write(root / "etc/os-release", 'ID=debian\nVERSION_ID="12"\n')
    site = root / "usr/lib/python3/dist-packages"
    for index in range(DIST_INFOS):
        info = site / f"bench_{index}-2.{index}.dist-info"
        write(
            info / "METADATA",
            f"Metadata-Version: 2.1\nName: bench_{index}\nVersion: 2.{index}\nLicense: MIT\n"
            "Classifier: License :: OSI Approved :: MIT License\n\n" + "description\n" * 50,
        )
        write(info / "RECORD", f"bench_{index}/__init__.py,,\n")
    modules = root / "app/node_modules"
    for index in range(NPM_PACKAGES):
        package = modules / (f"@scope{index % 10}/pkg{index}" if index % 4 == 0 else f"pkg{index}")
        name = package.relative_to(modules).as_posix()
        write(
            package / "package.json",
            json.dumps({"name": name, "version": f"3.{index}.0", "license": "ISC"}),
        )
        write(package / "index.js", "module.exports = 1;\n")
    directory = 0
    while written < files:
        folder = root / f"usr/share/bench/d{directory}"
        folder.mkdir(parents=True)
        for index in range(min(100, files - written)):
            (folder / f"f{index}.txt").write_bytes(b"x" * 512)
            written += 1
        directory += 1
    return written


CHILD = """
import json, os, resource, sys, time
from datetime import datetime, timezone
from pathlib import Path
from polybuild.sbom import scan_rootfs, spdx_document
root = Path(sys.argv[1])
if sys.argv[2] == "scan":
    wall, cpu = time.perf_counter(), time.process_time()
    inventory = scan_rootfs(root)
    scan_wall, scan_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall = time.perf_counter()
    text = json.dumps(spdx_document(inventory, name="bench", created=datetime.now(timezone.utc)))
    spdx_wall = time.perf_counter() - wall
    figures = {"scan_wall": scan_wall, "scan_cpu": scan_cpu, "spdx_wall": spdx_wall,
               "spdx_bytes": len(text), "packages": len(inventory.packages),
               "files_seen": inventory.files_seen, "warnings": inventory.warning_count}
else:
    figures = {}
figures["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
status = Path("/proc/self/status").read_text().splitlines()
figures["max_rss_kib"] = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:"))
print(json.dumps(figures))
"""


def child(root: Path, mode: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), mode],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(proc.stdout)
    return figures


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    root = work / "root"
    started = time.perf_counter()
    written = generate(root, args.files)
    print(f"root file system: {written} files written in {time.perf_counter() - started:.1f} s")
    baseline = child(root, "import")
    trials = [child(root, "scan") for _ in range(args.trials)]
    expected = DPKG_PACKAGES + DIST_INFOS + NPM_PACKAGES
    figures: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "files": written,
        "trials": trials,
        "import_only_max_rss_kib": baseline["max_rss_kib"],
    }
    for key in ("scan_wall", "scan_cpu", "spdx_wall", "max_rss_kib"):
        figures[f"median_{key}"] = statistics.median(t[key] for t in trials)
    print(
        f"{'trial':>5} {'scan s':>8} {'cpu s':>8} {'spdx s':>8} {'spdx MB':>8} {'peak RSS MB':>12}"
    )
    for number, trial in enumerate(trials, 1):
        print(
            f"{number:>5} {trial['scan_wall']:8.2f} {trial['scan_cpu']:8.2f} "
            f"{trial['spdx_wall']:8.2f} {trial['spdx_bytes'] / 1e6:8.2f} "
            f"{trial['max_rss_kib'] / 1024:12.1f}"
        )
    print(
        f"import only: peak RSS {baseline['max_rss_kib'] / 1024:.1f} MB; "
        f"packages found {trials[0]['packages']} (expected {expected}), "
        f"files seen {trials[0]['files_seen']}, warnings {trials[0]['warnings']}"
    )
    figures["ok"] = all(t["packages"] == expected and t["files_seen"] == written for t in trials)
    figures["load_after"] = os.getloadavg()
    return figures


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000, help="regular files in the root")
    parser.add_argument("--trials", type=int, default=3, help="scans, each in a new process")
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    args = parser.parse_args(argv)
    if args.files < 2 * DPKG_PACKAGES + 2 * DIST_INFOS + 2 * NPM_PACKAGES + 2:
        parser.error("--files must leave room for the packages' files")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="polybuild-bench-sbom-"))
    try:
        figures = run(args, work)
    finally:
        shutil.rmtree(work)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
