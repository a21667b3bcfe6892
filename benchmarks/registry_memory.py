"""Registry memory benchmark: push and pull a 1 GiB layer through the local docker-registry,
measuring each side's peak RSS, next to skopeo copy doing the same in the same run.

Run: PYTHONPATH=. .venv/bin/python benchmarks/registry_memory.py [--size-mib N] [--chunk-mib N]
Each transfer runs in its own process; its peak RSS is the kernel's VmHWM for that process,
polled from /proc while it runs (wait4's ru_maxrss would include the forking parent's RSS,
which Linux carries across exec).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Manifest, encode_manifest
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_image
from polybuild.platforms import Platform
from tests.registry.conftest import run_registry

MIB = 1 << 20
PUSH = """
import asyncio, sys
from pathlib import Path
from polybuild.image.descriptor import Descriptor
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.registry import RegistryClient, push
store = ImageStore(Path(sys.argv[1]))
target = store.records()[0].target
client = RegistryClient(chunk_size=int(sys.argv[3]))
asyncio.run(push(store.content, target, [parse(sys.argv[2])], client=client))
"""
PULL = """
import asyncio, sys
from pathlib import Path
from polybuild.image.store import ImageStore
from polybuild.registry import pull
asyncio.run(pull(ImageStore(Path(sys.argv[1])), sys.argv[2], "all"))
"""


def _hwm(pid: int) -> float:
    """VmHWM (peak resident set) of `pid` in MB, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one child process."""
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _hwm(process.pid))
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return elapsed, peak


def make_image(store: ImageStore, size: int) -> None:
    """An image whose one layer is `size` incompressible bytes, written in 1 MiB pieces."""
    with store.lease():
        small = write_image(store.content, Platform("linux", "amd64"))
        with store.content.writer() as writer:
            for _ in range(size // MIB):
                writer.write(os.urandom(MIB))
        assert writer.digest is not None
        layer = Descriptor(mt.OCI_LAYER, writer.digest, size)
        base = encode_manifest(Manifest(config=_config(store, small), layers=(layer,)))
        store.content.put(base.raw, base.digest)
        store.tag("bench/big:1", base.descriptor())


def _config(store: ImageStore, manifest: Descriptor) -> Descriptor:
    from polybuild.image.manifest import parse_manifest

    return parse_manifest(store.content.get(manifest.digest)).value.config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=32)
    args = parser.parse_args()
    skopeo = "skopeo"
    with tempfile.TemporaryDirectory(prefix="polybuild-bench-") as tmp:
        base = Path(tmp)
        env = {**os.environ, "DOCKER_CONFIG": str(base / "docker"), "PYTHONPATH": os.getcwd()}
        store = ImageStore(base / "source")
        make_image(store, args.size_mib * MIB)
        # skopeo pushes to a second, empty registry, so it too has to upload every byte
        with run_registry(base / "registry") as registry, run_registry(base / "r2") as second:
            host = registry.host
            rows = []
            rows.append(
                (
                    "polybuild push",
                    *measure(
                        [
                            sys.executable,
                            "-c",
                            PUSH,
                            str(store.root),
                            f"{host}/bench/big:1",
                            str(args.chunk_mib * MIB),
                        ],
                        env,
                    ),
                )
            )
            rows.append(
                (
                    "polybuild pull",
                    *measure(
                        [sys.executable, "-c", PULL, str(base / "pulled"), f"{host}/bench/big:1"],
                        env,
                    ),
                )
            )
            rows.append(
                (
                    "skopeo pull (copy to oci:)",
                    *measure(
                        [
                            skopeo,
                            "copy",
                            "-q",
                            "--src-tls-verify=false",
                            f"docker://{host}/bench/big:1",
                            f"oci:{base / 'layout'}:x",
                        ],
                        env,
                    ),
                )
            )
            rows.append(
                (
                    "skopeo push (copy from oci:)",
                    *measure(
                        [
                            skopeo,
                            "copy",
                            "-q",
                            "--dest-tls-verify=false",
                            f"oci:{base / 'layout'}:x",
                            f"docker://{second.host}/bench/big:1",
                        ],
                        env,
                    ),
                )
            )
    print(f"layer: {args.size_mib} MiB, chunk: {args.chunk_mib} MiB")
    print(f"{'transfer':32} {'seconds':>8} {'peak RSS MB':>12}")
    for name, seconds, rss in rows:
        print(f"{name:32} {seconds:8.1f} {rss:12.1f}")
    print(
        f"push RSS vs skopeo: {rows[0][2] / rows[3][2]:.2f}x, "
        f"pull RSS vs skopeo: {rows[1][2] / rows[2][2]:.2f}x"
    )
    ok = max(rows[0][2], rows[1][2]) < 150
    print("peak memory under 150 MB:", "yes" if ok else "NO")


if __name__ == "__main__":
    main()
