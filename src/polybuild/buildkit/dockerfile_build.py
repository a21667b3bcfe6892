"""What a BuildKit daemon's `dockerfile.v0` frontend is asked to build, as one value, and the
frontend attributes buildx sends for it. Free of protobuf, so that provenance (which lists
those attributes, imagebuild/attestations.py) reads the same mapping without loading gRPC."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CONTEXT = "context"  # the local directory names the dockerfile frontend asks for
DOCKERFILE = "dockerfile"


@dataclass(frozen=True, slots=True)
class DockerfileBuild:
    """What the dockerfile frontend is asked to build (its attributes are BuildKit's)."""

    context: Path
    dockerfile_dir: Path
    filename: str
    platforms: tuple[str, ...]
    remote_context: str = ""  # a git or HTTP(S) URL the daemon fetches (then no local context)
    local_dockerfile: bool = True  # with remote_context: the Dockerfile comes from here
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    pull: bool = False
    network: str = "default"
    entitlements: tuple[str, ...] = ()
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    ssh: Mapping[str, Path] = field(default_factory=dict)  # --ssh: id -> agent socket
    shared_key: str = ""  # the same for the same client context: incremental transfers
    source_date_epoch: int | None = None  # also clamps the layers' file times, as ours
    add_hosts: tuple[tuple[str, str], ...] = ()  # --add-host
    ulimits: tuple[tuple[str, int, int], ...] = ()  # --ulimit
    shm_size: int | None = None  # --shm-size (bytes)
    named_contexts: Mapping[str, str] = field(default_factory=dict)  # name -> source
    named_directories: Mapping[str, Path] = field(default_factory=dict)  # local name -> dir
    cache_to: tuple[tuple[str, Mapping[str, str]], ...] = ()  # (type, attrs), as given
    cache_from: tuple[tuple[str, Mapping[str, str]], ...] = ()

    def exporter_attrs(self) -> dict[str, str]:
        """The image exporters' common attributes: OCI media types (the client converts when
        asked for Docker's), and with SOURCE_DATE_EPOCH file times in the layers clamped to
        it (BuildKit keeps them otherwise; polybuild always clamps)."""
        attrs = {"oci-mediatypes": "true"}
        if self.source_date_epoch is not None:
            attrs["rewrite-timestamp"] = "true"
        return attrs

    def frontend_attrs(self) -> dict[str, str]:
        attrs = {"filename": self.filename, "platform": ",".join(self.platforms)}
        if self.remote_context:
            attrs["context"] = self.remote_context
            if self.local_dockerfile:
                attrs["dockerfilekey"] = DOCKERFILE
        if self.target:
            attrs["target"] = self.target
        for name, value in self.build_args.items():
            attrs[f"build-arg:{name}"] = value
        for name, value in self.labels.items():
            attrs[f"label:{name}"] = value
        if self.no_cache:
            attrs["no-cache"] = ""
        elif self.no_cache_filter:
            attrs["no-cache"] = ",".join(self.no_cache_filter)
        if self.pull:
            attrs["image-resolve-mode"] = "pull"
        if self.network != "default":
            attrs["force-network-mode"] = self.network
        if self.ulimits:
            attrs["ulimit"] = ",".join(f"{n}={soft}:{hard}" for n, soft, hard in self.ulimits)
        if self.shm_size:
            attrs["shm-size"] = str(self.shm_size)
        if self.add_hosts:
            attrs["add-hosts"] = ",".join(f"{host}={ip}" for host, ip in self.add_hosts)
        for name, source in self.named_contexts.items():
            attrs[f"context:{name}"] = source
        if self.cache_from:
            # The frontend solves the stages itself and reads the imports from here (as
            # BuildKit's own client sets it, in Go's JSON of CacheOptionsEntry).
            attrs["cache-imports"] = json.dumps(
                [{"Type": t, "Attrs": dict(a)} for t, a in self.cache_from],
                separators=(",", ":"),
            )
        return attrs


__all__ = ["CONTEXT", "DOCKERFILE", "DockerfileBuild"]
