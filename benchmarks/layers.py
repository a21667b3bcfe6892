"""Layer compression benchmark: ISA-L gzip vs stdlib zlib level 6 vs zstd on a 256 MiB layer.

Run: .venv/bin/python benchmarks/layers.py [--size-mib N] [--source DIR]
The layer is a real tar of files from --source (default /usr), repeated up to the size,
so the ratios are those of a typical root filesystem, not of random or zero bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from polybuild.layers import Compression, LayerWriter, write_directory_tar

MIB = 1 << 20


class _Full(Exception):
    """Raised by the sink once it holds enough bytes: stops the tar writer early."""


class _Capped(io.RawIOBase):
    """Collects written bytes until `limit`, then stops the tar writer."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.data = bytearray()
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        if len(self.data) >= self.limit:
            raise _Full
        return len(b)


def make_layer(source: Path, size: int) -> bytes:
    """`size` bytes of a real layer tar of `source`, repeated if the tree is smaller."""
    sink = _Capped(size)
    with contextlib.suppress(_Full):
        write_directory_tar(source, sink)
    data = bytes(sink.data)
    while len(data) < size:
        data += data[: size - len(data)]
    return data[:size]


def _chunks(data: bytes) -> list[memoryview]:
    view = memoryview(data)
    return [view[i : i + MIB] for i in range(0, len(data), MIB)]


def run_polybuild(data: bytes, compression: Compression, level: int | None) -> int:
    out = _Counter()
    with LayerWriter(out, compression=compression, level=level) as writer:  # type: ignore[arg-type]
        for chunk in _chunks(data):
            writer.write(chunk)
    return out.size


def run_zlib6(data: bytes) -> int:
    # The stdlib path most Python tools take: zlib deflate level 6 in gzip framing, plus sha256s.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    diff, blob, size = hashlib.sha256(), hashlib.sha256(), 0
    for chunk in _chunks(data):
        diff.update(chunk)
        out = compressor.compress(chunk)
        blob.update(out)
        size += len(out)
    tail = compressor.flush()
    blob.update(tail)
    return size + len(tail)


class _Counter:
    """A sink that only counts, so the disk is not part of the measurement."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--source", type=Path, default=Path("/usr"))
    args = parser.parse_args()
    size = args.size_mib * MIB
    data = make_layer(args.source, size)
    cases: list[tuple[str, Callable[[], int]]] = [
        ("isal gzip level 1", lambda: run_polybuild(data, Compression.GZIP, 1)),
        ("isal gzip level 2 (default)", lambda: run_polybuild(data, Compression.GZIP, 2)),
        ("isal gzip level 3", lambda: run_polybuild(data, Compression.GZIP, 3)),
        ("stdlib zlib level 6", lambda: run_zlib6(data)),
        ("zstd level 3 (default)", lambda: run_polybuild(data, Compression.ZSTD, 3)),
        ("uncompressed (hash only)", lambda: run_polybuild(data, Compression.NONE, None)),
    ]
    print(f"layer: {args.size_mib} MiB tar of {args.source}")
    print(f"{'method':30} {'MB/s':>8} {'ratio':>7} {'seconds':>8}")
    results = {}
    for name, run in cases:
        start = time.perf_counter()
        compressed = run()
        elapsed = time.perf_counter() - start
        results[name] = elapsed
        rate = size / 1e6 / elapsed
        print(f"{name:30} {rate:8.1f} {size / compressed:7.2f} {elapsed:8.2f}")
    speedup = results["stdlib zlib level 6"] / results["isal gzip level 2 (default)"]
    print(f"isal gzip (default) is {speedup:.1f}x faster than zlib level 6")


if __name__ == "__main__":
    main()
