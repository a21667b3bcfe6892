"""A scripted build's progress events, with a fake clock, shared by the renderer tests."""

from __future__ import annotations

from polybuild.platforms import Platform
from polybuild.progress import Progress, ProgressWriter, VertexLog

ARM64 = Platform("linux", "arm64")
AMD64 = Platform("linux", "amd64")
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        self.now = T0 + offset


def run_script(sink: Progress) -> None:
    """Two platforms, one emulated step interleaved with a native one, a cache hit,
    a transfer, a warning and a failure."""
    clock = Clock()
    writer = ProgressWriter(sink, clock=clock)
    with writer.vertex("sha256:01", "[internal] load build definition from Dockerfile"):
        clock.at(0.1)
    clock.at(0.2)
    writer.cached(
        "sha256:02", "[linux/amd64 build 1/2] FROM docker.io/library/busybox", platform=AMD64
    )
    clock.at(1.0)
    with writer.vertex(
        "sha256:03", "[linux/arm64 build 2/2] RUN make", platform=ARM64, emulated=True
    ) as arm:
        clock.at(1.532)
        arm.log(b"cc -o app app.c\nlink")
        clock.at(1.6)
        with writer.vertex(
            "sha256:04", "[linux/amd64 build 2/2] RUN make", platform=AMD64, inputs=["sha256:02"]
        ) as amd:
            clock.at(1.7)
            amd.log(b"native ok\n")
            clock.at(2.0)
        clock.at(2.5)
        arm.log(b"ing done\n", stream=2)
        writer.warn("RUN make took long under emulation", vertex="sha256:03")
        clock.at(45.2)
    clock.at(45.3)
    with writer.vertex("sha256:05", "exporting to image") as export:
        export.status("exporting layers", 0, 0, started=clock())
        clock.at(45.8)
        export.status("sha256:abcdef", 1536, 3 << 20, started=T0 + 45.3)
        clock.at(46.0)
        export.status("sha256:abcdef", 3 << 20, 3 << 20, started=T0 + 45.3, completed=clock())
    try:
        with writer.vertex(
            "sha256:06", "[linux/arm64 build 3/3] RUN false", platform=ARM64, emulated=True
        ):
            clock.at(46.5)
            writer.emit(VertexLog("sha256:06", b"to stderr\n", T0 + 46.5, 2))
            raise RuntimeError(
                'process "/bin/sh -c false" did not complete successfully: exit code: 1'
            )
    except RuntimeError:
        pass
    writer.warn("FromAsCasing: 'as' and 'FROM' keywords' casing do not match")
    writer.close()
