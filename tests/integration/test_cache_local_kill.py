"""A local cache directory is never seen half-written: an exporter killed with SIGKILL at
any moment of writing a new cache leaves the previous one whole, and a build on an empty data
root still takes its steps from it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polybuild.cache.local_cache import LocalCache
from polybuild.image.digest import digest_file
from tests.conftest import require_root, run_cli
from tests.integration.test_cache_export import base  # noqa: F401 (fixture)
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration]

WRITER = """
import asyncio, os, sys
from pathlib import Path
from polybuild.cache.config import Record
from polybuild.cache.local_cache import LocalCache
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer

content = ContentStore(Path(sys.argv[2]))
records = {}
for n in range(3):
    data = os.urandom(1 << 20) * 48 + bytes([n])
    digest = content.put(data)
    layer = Layer(Descriptor("application/vnd.oci.image.layer.v1.tar", digest, len(data)), digest)
    key = str(Digest.of(b"big%d" % n))
    records[key] = Record(key, (layer,))
print("ready", flush=True)
sys.stdin.readline()
asyncio.run(LocalCache(Path(sys.argv[1])).write(records, content))
print("written", flush=True)
"""


def whole(directory: Path) -> bool:
    """The cache in `directory` reads, and every blob it names hashes to its name."""
    cache = LocalCache(directory)
    artifact = cache.artifact()
    for descriptor in (artifact.config, *artifact.layers):
        path = directory / "blobs" / "sha256" / descriptor.digest.hex
        with path.open("rb") as f:
            if digest_file(f)[0] != descriptor.digest:
                return False
    return True


def test_a_killed_exporter_leaves_the_old_cache_whole(
    base: tuple[str, Registry],  # noqa: F811
    tmp_path: Path,
) -> None:
    require_root()
    root = tmp_path / "r1"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base[0]}\nRUN cat /proc/sys/kernel/random/uuid > /u\n")
    cache = tmp_path / "cache"
    first = run_cli(root, "build", "--platform", "linux/amd64", "--cache-to",
                    f"type=local,dest={cache},mode=max",
                    "-o", f"type=local,dest={tmp_path / 'o1'}", str(ctx))  # fmt: skip
    assert first.returncode == 0, first.stderr
    old = (cache / "index.json").read_bytes()

    killed_mid_write = 0
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(cache), str(tmp_path / f"content-{delay}")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == "ready\n"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        assert whole(cache), f"killed after {delay} s: the cache is broken"
        if (cache / "index.json").read_bytes() == old:
            killed_mid_write += 1
    assert killed_mid_write, "every writer finished before it was killed: nothing was tested"
    assert (cache / "index.json").read_bytes() == old

    again = run_cli(tmp_path / "r2", "build", "--platform", "linux/amd64",
                    "--cache-from", f"type=local,src={cache}",
                    "-o", f"type=local,dest={tmp_path / 'o2'}", str(ctx))  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "o2" / "u").read_text() == (tmp_path / "o1" / "u").read_text(), again.stderr
