"""Frontend benchmark: parse and convert a 1,000-line Dockerfile; prints times and peer ratios.

Run with `.venv/bin/python benchmarks/frontend.py`. Peers measured in the same run when
importable: e2b-dockerfile-utils' parser (a dependency) and the `dockerfile` package (Go parser).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from polybuild.dockerfile import BuildOptions, convert, load, parse
from polybuild.platforms import parse as parse_platform


def make_dockerfile(lines: int = 1000) -> str:
    """A realistic multi-stage Dockerfile of about `lines` lines."""
    out = [
        "# syntax=docker/dockerfile:1",
        "ARG GO_VERSION=1.22",
        "FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build",
        "ARG TARGETOS TARGETARCH",
        "WORKDIR /src",
    ]
    i = 0
    while len(out) < lines - 12:
        i += 1
        out += [
            f"ENV STEP_{i}=value-{i} PATH=/opt/{i}/bin:$PATH",
            f"RUN --mount=type=cache,target=/root/.cache/{i} \\",
            f"    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/tool{i} ./cmd/tool{i} && \\",
            f"    echo built {i}",
            f'LABEL step{i}="${{STEP_{i}}}" org.example.n="{i}"',
            f"COPY --chmod=755 scripts/s{i}.sh /usr/local/bin/",
        ]
    out += [
        "FROM alpine:3.20",
        "RUN apk add --no-cache ca-certificates",
        "COPY --from=build /out/ /usr/local/bin/",
        "COPY <<EOF /etc/app.conf",
        "listen=0.0.0.0:8080",
        "EOF",
        "EXPOSE 8080",
        "USER 65534",
        'HEALTHCHECK --interval=30s CMD ["/usr/local/bin/tool1", "health"]',
        'ENTRYPOINT ["/usr/local/bin/tool1"]',
    ]
    return "\n".join(out) + "\n"


def measure(fn: Callable[[], object], repeat: int = 15) -> float:
    """Median wall time in milliseconds."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    text = make_dockerfile()
    options = BuildOptions(build_platform=parse_platform("linux/amd64"))
    target = parse_platform("linux/arm64")
    print(f"Dockerfile: {text.count(chr(10))} lines")
    rows = [
        ("polybuild parse", measure(lambda: parse(text))),
        ("polybuild parse + instructions", measure(lambda: load(text))),
        ("polybuild convert (parse..graph)", measure(lambda: convert(text, options, target))),
    ]
    df = load(text)
    rows.append(("polybuild convert (from stages)", measure(lambda: convert(df, options, target))))
    try:
        from e2b_dockerfile_utils import parse_dockerfile_ast

        rows.append(("peer: e2b parse_dockerfile_ast", measure(lambda: parse_dockerfile_ast(text))))
    except ImportError:
        print("peer e2b-dockerfile-utils not installed")
    try:
        import dockerfile  # type: ignore[import-not-found]

        rows.append(
            ("peer: dockerfile (Go parser)", measure(lambda: dockerfile.parse_string(text)))
        )
    except ImportError:
        print("peer `dockerfile` (Go parser) not installed; skipped")
    base = rows[0][1]
    for name, ms in rows:
        print(f"{name:36s} {ms:8.2f} ms   ({ms / base:5.2f}x polybuild parse)")


if __name__ == "__main__":
    main()
