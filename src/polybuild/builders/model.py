"""Builders and their nodes as values, and where they are saved (one JSON file per builder)."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from polybuild.builders.endpoint import LOCAL, is_local
from polybuild.builders.node_options import (
    BuildKitOptions,
    NodeOptions,
    buildkit_options,
    node_options,
)
from polybuild.errors import BuilderNotFoundError, PolybuildError, UsageError
from polybuild.image.content import write_file_atomic
from polybuild.platforms import Platform, format_platform, parse

DEFAULT_BUILDER = "default"
# Names this version creates (buildx's rule: a letter first, stored lower-case) ...
_NEW_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9._-]*$")
# ... and names older versions created, still found (no path separators, no leading dot).
_STORED_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def validate_name(name: str, what: str = "builder") -> str:
    """A new builder or node name, lower-cased as buildx stores it."""
    if not _NEW_NAME.match(name):
        raise UsageError(
            f"invalid {what} name {name!r}",
            hint="a name starts with a letter and may hold letters, digits, '.', '_' and '-'",
        )
    return name.lower()


LOCAL_DRIVER = "local"  # polybuild itself: this machine, or another over ssh
REMOTE_DRIVER = "remote"  # a BuildKit daemon (buildx's remote driver)


@dataclass(frozen=True, slots=True)
class Node:
    """One machine of a builder: this one (`local`), another with polybuild reached over
    `ssh://`, or a BuildKit daemon (driver `remote`) at `tcp://` or `unix://`."""

    name: str
    endpoint: str = LOCAL
    platforms: tuple[Platform, ...] = ()  # pinned with --platform; tried first
    driver_opts: tuple[tuple[str, str], ...] = ()  # --driver-opt K=V, sorted by key
    driver: str = LOCAL_DRIVER

    @property
    def is_local(self) -> bool:
        return self.driver == LOCAL_DRIVER and is_local(self.endpoint)

    @property
    def is_buildkit(self) -> bool:
        return self.driver == REMOTE_DRIVER

    @property
    def options(self) -> NodeOptions:
        """What an ssh node's --driver-opt pairs mean (checked when it was created)."""
        return node_options(self.driver_opts)

    @property
    def buildkit(self) -> BuildKitOptions:
        """What a BuildKit node's --driver-opt pairs mean (checked when it was created)."""
        return buildkit_options(self.driver_opts)


@dataclass(frozen=True, slots=True)
class Builder:
    """A named set of nodes that builds run on (`polybuild create`)."""

    name: str
    driver: str = "local"
    nodes: tuple[Node, ...] = field(default_factory=lambda: (Node(f"{DEFAULT_BUILDER}0"),))

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "driver": self.driver,
                "nodes": [
                    {
                        "name": n.name,
                        "endpoint": n.endpoint,
                        "platforms": [format_platform(p) for p in n.platforms],
                        "driver_opts": dict(n.driver_opts),
                        "driver": n.driver,
                    }
                    for n in self.nodes
                ],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> Builder:
        """A saved builder; files of older versions (no driver_opts, no node driver) read as
        having none (nodes of polybuild's own driver)."""
        try:
            data = json.loads(text)
            nodes = tuple(
                Node(
                    str(n["name"]),
                    str(n.get("endpoint", LOCAL)),
                    tuple(parse(p) for p in n.get("platforms", [])),
                    tuple(sorted((str(k), str(v)) for k, v in n.get("driver_opts", {}).items())),
                    str(n.get("driver", LOCAL_DRIVER)),
                )
                for n in data["nodes"]
            )
            return cls(str(data["name"]), str(data.get("driver", "local")), nodes)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PolybuildError(f"{where}: not a valid builder file ({exc})") from exc


def default_builder() -> Builder:
    return Builder(DEFAULT_BUILDER, "local", (Node(DEFAULT_BUILDER),))


class BuilderStore:
    """`<root>/builders/<name>.json`, and `<root>/builders/current` naming the one in use."""

    def __init__(self, root: Path) -> None:
        self.directory = root / "builders"

    def _path(self, name: str) -> Path:
        if not _STORED_NAME.match(name):
            raise UsageError(
                f"invalid builder name {name!r}",
                hint="a name starts with a letter and may hold letters, digits, '.', '_' and '-'",
            )
        path = self.directory / f"{name}.json"
        if not path.exists() and name != name.lower():
            return self.directory / f"{name.lower()}.json"  # buildx finds names in any case
        return path

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock across a read-change-write (two `create --append` at once)."""
        import filelock

        self.directory.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(self.directory / "store.lock"), mode=0o600):
            yield

    def list(self) -> list[Builder]:
        """The saved builders by name, then the default one (as buildx lists them)."""
        builders = []
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.json")):
                builders.append(Builder.from_json(path.read_text(), str(path)))
        return [*builders, default_builder()]

    def find(self, name: str) -> Builder | None:
        if name == DEFAULT_BUILDER:
            return default_builder()
        path = self._path(name)
        if not path.exists():
            return None
        return Builder.from_json(path.read_text(), str(path))

    def get(self, name: str) -> Builder:
        builder = self.find(name)
        if builder is None:
            raise BuilderNotFoundError(
                f"no builder {name!r} found", hint="list them with `polybuild ls`"
            )
        return builder

    def save(self, builder: Builder) -> None:
        if builder.name == DEFAULT_BUILDER:
            raise UsageError(
                "the default builder cannot be changed",
                hint="create a builder of your own with --name",
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        write_file_atomic(self._path(builder.name), builder.to_json().encode())

    def remove(self, name: str) -> None:
        if name == DEFAULT_BUILDER:
            raise UsageError(
                "the default builder cannot be removed",
                hint="it is this machine; remove the builders you created",
            )
        path = self._path(name)
        if not path.exists():
            raise BuilderNotFoundError(f"no builder {name!r} found")
        path.unlink()
        if self.current_name() in (name, path.stem):
            (self.directory / "current").unlink(missing_ok=True)

    def current_name(self) -> str:
        try:
            return (self.directory / "current").read_text().strip() or DEFAULT_BUILDER
        except OSError:
            return DEFAULT_BUILDER

    def use(self, name: str) -> None:
        """Build on `name` from now on (`default`: back to this machine's builder)."""
        builder = self.get(name)  # must exist
        self.directory.mkdir(parents=True, exist_ok=True)
        if builder.name == DEFAULT_BUILDER:
            (self.directory / "current").unlink(missing_ok=True)
        else:
            write_file_atomic(self.directory / "current", builder.name.encode())

    def current(self) -> Builder:
        """The builder `--builder` did not name: $BUILDX_BUILDER, else the one in use.

        $BUILDX_BUILDER naming no builder is an error (it stands for --builder, as in buildx);
        a `current` file naming a builder removed by other means falls back to the default.
        """
        named = os.environ.get("BUILDX_BUILDER")
        if named:
            return self.get(named)
        try:
            return self.find(self.current_name()) or default_builder()
        except UsageError:  # a hand-edited `current` file
            return default_builder()


def with_node(builder: Builder, node: Node) -> Builder:
    """Add a node, or replace the one of the same name in place."""
    if builder.node(node.name) is None:
        return replace(builder, nodes=(*builder.nodes, node))
    return replace(builder, nodes=tuple(node if n.name == node.name else n for n in builder.nodes))
