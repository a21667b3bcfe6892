"""Two builds of different projects and prunes at the same time on one data root: both builds
succeed and no prune removes anything either of them needs."""

from __future__ import annotations

import time

import pytest

from tests.reliability.harness import verify
from tests.reliability.scenarios import World, app_files, build_argv

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

MAX_PRUNES = 8  # each is a process start; more would only slow the builds on 2 cores


def test_two_builds_and_prunes_at_once(world: World) -> None:
    lab = world.lab("builds-and-prune")
    # Something for the prunes to remove: an image's layers and cache, the image gone.
    lab.ok(*build_argv(world.other_context, 99, ("-t", "old", "--load")))
    lab.ok("rmi", "old")
    prunes = [lab.start(["prune", "--force", "--all"])]
    builds = [
        lab.start(build_argv(world.app_context, 1, ("-t", "app", "--load"))),
        lab.start(build_argv(world.other_context, 1, ("-t", "other", "--load"))),
    ]
    while any(build.poll() is None for build in builds) and len(prunes) < MAX_PRUNES:
        time.sleep(0.5)
        prunes.append(lab.start(["prune", "--force", "--all"]))
    for build in builds:
        _, err = build.communicate(timeout=300)
        assert build.returncode == 0, err.decode()[-2000:]
    outcomes = []
    for prune in prunes:
        out, err = prune.communicate(timeout=300)
        # A prune either ran (no build held the data root) or was refused, changing nothing.
        assert prune.returncode == 0 or b"is using" in err, err.decode()
        outcomes.append(prune.returncode)
    assert 1 in outcomes, "no prune overlapped a build"
    assert app_files(lab, 1) == []
    assert lab.ok("run", "--platform", "linux/amd64", "other", "cat", "/other") == "other 1\n"
    assert verify(lab) == []
    # The cache of both builds is intact unless a prune ran after them: a rebuild works.
    lab.ok(*build_argv(world.app_context, 1, ("-t", "app", "--load")))
    assert verify(lab) == []
