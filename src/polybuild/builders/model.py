"""Builders and their nodes as values, and where they are saved (one JSON file per builder)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from polybuild.errors import BuilderNotFoundError, PolybuildError, UsageError
from polybuild.image.content import write_file_atomic
from polybuild.platforms import Platform, format_platform, parse

DEFAULT_BUILDER = "default"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Node:
    """One machine of a builder: this one (`local`) or a remote worker (`ssh://`, `tcp://`)."""

    name: str
    endpoint: str = "local"
    platforms: tuple[Platform, ...] = ()  # configured with --platform; tried first

    @property
    def is_local(self) -> bool:
        return self.endpoint in ("local", "")


@dataclass(frozen=True, slots=True)
class Builder:
    """A named set of nodes that builds run on (`polybuild create`)."""

    name: str
    driver: str = "local"
    nodes: tuple[Node, ...] = field(default_factory=lambda: (Node(f"{DEFAULT_BUILDER}0"),))

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
                    }
                    for n in self.nodes
                ],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> Builder:
        try:
            data = json.loads(text)
            nodes = tuple(
                Node(
                    str(n["name"]),
                    str(n.get("endpoint", "local")),
                    tuple(parse(p) for p in n.get("platforms", [])),
                )
                for n in data["nodes"]
            )
            return cls(str(data["name"]), str(data.get("driver", "local")), nodes)
        except (ValueError, KeyError, TypeError) as exc:
            raise PolybuildError(f"{where}: not a valid builder file ({exc})") from exc


def default_builder() -> Builder:
    return Builder(DEFAULT_BUILDER, "local", (Node(DEFAULT_BUILDER),))


class BuilderStore:
    """`<root>/builders/<name>.json`, and `<root>/builders/current` naming the one in use."""

    def __init__(self, root: Path) -> None:
        self.directory = root / "builders"

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise UsageError(
                f"invalid builder name {name!r}", hint="use letters, digits, '.', '_' and '-'"
            )
        return self.directory / f"{name}.json"

    def list(self) -> list[Builder]:
        builders = [default_builder()]
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.json")):
                builders.append(Builder.from_json(path.read_text(), str(path)))
        return builders

    def get(self, name: str) -> Builder:
        if name == DEFAULT_BUILDER:
            return default_builder()
        path = self._path(name)
        if not path.exists():
            raise BuilderNotFoundError(
                f"no builder {name!r} found", hint="list them with `polybuild ls`"
            )
        return Builder.from_json(path.read_text(), str(path))

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
            raise UsageError("the default builder cannot be removed")
        path = self._path(name)
        if not path.exists():
            raise BuilderNotFoundError(f"no builder {name!r} found")
        path.unlink()
        if self.current_name() == name:
            (self.directory / "current").unlink(missing_ok=True)

    def current_name(self) -> str:
        try:
            return (self.directory / "current").read_text().strip() or DEFAULT_BUILDER
        except OSError:
            return DEFAULT_BUILDER

    def use(self, name: str) -> None:
        self.get(name)  # must exist
        self.directory.mkdir(parents=True, exist_ok=True)
        write_file_atomic(self.directory / "current", name.encode())

    def current(self) -> Builder:
        """The builder `--builder` did not name: $BUILDX_BUILDER, else the one in use."""
        name = os.environ.get("BUILDX_BUILDER") or self.current_name()
        try:
            return self.get(name)
        except BuilderNotFoundError:
            return default_builder()


def with_node(builder: Builder, node: Node) -> Builder:
    """`create --append`: add a node, or replace one of the same name."""
    nodes = [n for n in builder.nodes if n.name != node.name]
    return replace(builder, nodes=(*nodes, node))
