"""One mapping from a build request to the dockerfile frontend's attributes: what a BuildKit
node is sent is what provenance says was asked (less the host-specific attributes)."""

from __future__ import annotations

from pathlib import Path

from polybuild.attest.provenance import filter_args
from polybuild.imagebuild.frontend_request import dockerfile_build, frontend_attrs
from polybuild.imagebuild.request import make_request


def test_provenance_lists_every_attribute_a_buildkit_node_is_sent(tmp_path: Path) -> None:
    request = make_request(
        tmp_path,
        platforms=["linux/amd64", "linux/arm64"],
        build_args={"VERSION": "1.2"},
        target="app",
        labels={"team": "ci"},
        no_cache_filter=["build"],
        pull=True,
        network="none",
        add_hosts=["db:10.0.0.5"],
        ulimits=["nofile=1024:2048"],
        shm_size="64m",
        build_contexts=["base=docker-image://busybox:1.36"],
    )
    sent = dockerfile_build(
        request, request.platforms, context=tmp_path, dockerfile_dir=tmp_path, filename="Dockerfile"
    ).frontend_attrs()
    listed = frontend_attrs(request, "Dockerfile")
    assert listed == sent
    assert {
        "no-cache": "build",
        "force-network-mode": "none",
        "add-hosts": "db=10.0.0.5",
        "ulimit": "nofile=1024:2048",
        "shm-size": str(64 << 20),
        "context:base": "docker-image://busybox:1.36",
        "build-arg:VERSION": "1.2",
        "label:team": "ci",
        "target": "app",
    }.items() <= listed.items()
    recorded = filter_args(listed)  # as BuildKit's provenance keeps them
    assert "platform" not in recorded and "image-resolve-mode" not in recorded
    assert recorded["add-hosts"] == "db=10.0.0.5"


def test_a_url_context_is_named_by_its_url_and_a_stdin_dockerfile_travels_beside_it(
    tmp_path: Path,
) -> None:
    request = make_request(
        "https://github.com/example/app.git#main", dockerfile_text=b"FROM scratch\n"
    )
    attrs = frontend_attrs(request, "Dockerfile")
    assert attrs["context"] == "https://github.com/example/app.git#main"
    assert attrs["dockerfilekey"] == "dockerfile"
