"""errors.py's docstring tree is the whole exception tree: every PolybuildError subclass of
every module is defined in errors.py and listed there, under its base, with its exit code."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

import polybuild
from polybuild import errors
from polybuild.cli.exit_codes import exit_code_of

# Subclasses still defined beside the code that raises them, in modules owned by other
# refactors of issue 10; the tree marks them with *. Move each into errors.py, then drop it here.
DEFINED_ELSEWHERE: dict[str, str] = {}

# A tree line: indentation, branch drawing, the class name, an optional *, the exit code.
_ENTRY = re.compile(
    r"^    (?P<branch>(?:│   |    )*(?:├── |└── )?)"
    r"(?P<name>[A-Z]\w*Error)(?P<star>\*?) +(?P<code>\d+) "
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One class as the docstring tree lists it."""

    parent: str | None
    exit_code: int
    starred: bool


def documented_tree() -> dict[str, Entry]:
    """The tree in errors.py's docstring, by class name."""
    assert errors.__doc__ is not None
    entries: dict[str, Entry] = {}
    path: list[str] = []  # the names from the root down to the previous entry
    for line in errors.__doc__.splitlines():
        match = _ENTRY.match(line)
        if match is None:
            continue
        depth = len(match["branch"]) // 4
        assert depth <= len(path), f"the tree skips a level at {match['name']}"
        del path[depth:]
        name = match["name"]
        assert name not in entries, f"{name} is listed twice in errors.py's tree"
        entries[name] = Entry(path[-1] if path else None, int(match["code"]), match["star"] == "*")
        path.append(name)
    return entries


def error_classes() -> dict[str, type[errors.PolybuildError]]:
    """Every PolybuildError subclass defined in any module of the package, by name."""
    for module in pkgutil.walk_packages(polybuild.__path__, "polybuild."):
        if module.name != "polybuild.__main__":
            importlib.import_module(module.name)
    found: dict[str, type[errors.PolybuildError]] = {}
    pending: list[type[errors.PolybuildError]] = [errors.PolybuildError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("polybuild"):  # tests may subclass too
            assert found.setdefault(cls.__name__, cls) is cls, f"two classes named {cls.__name__}"
        pending.extend(cls.__subclasses__())
    return found


def test_every_error_class_is_in_the_tree() -> None:
    missing = sorted(set(error_classes()) - set(documented_tree()))
    assert not missing, f"add these to the tree in polybuild/errors.py's docstring: {missing}"


def test_the_tree_names_only_classes_that_exist() -> None:
    stale = sorted(set(documented_tree()) - set(error_classes()))
    assert not stale, f"errors.py's tree lists classes that no longer exist: {stale}"


def test_every_error_class_is_defined_in_errors_py() -> None:
    where = {name: cls.__module__ for name, cls in error_classes().items()}
    elsewhere = {name: module for name, module in where.items() if module != "polybuild.errors"}
    assert elsewhere == {n: m for n, m in DEFINED_ELSEWHERE.items() if n in where}, (
        "define error classes in polybuild/errors.py and import them where they are raised"
    )
    assert all(
        name in errors.__all__ for name, module in where.items() if module == errors.__name__
    )


def test_the_tree_marks_classes_defined_elsewhere() -> None:
    starred = {name for name, entry in documented_tree().items() if entry.starred}
    assert starred == set(DEFINED_ELSEWHERE) & set(error_classes())


def test_each_class_sits_under_its_base() -> None:
    tree = documented_tree()
    for name, cls in error_classes().items():
        if name not in tree:
            continue  # test_every_error_class_is_in_the_tree names it
        base = cls.__bases__[0]
        expected = None if cls is errors.PolybuildError else base.__name__
        assert tree[name].parent == expected, f"{name} derives from {base.__name__}"


def test_the_tree_gives_the_exit_codes_the_cli_uses() -> None:
    tree = documented_tree()
    wrong = {
        name: (tree[name].exit_code, exit_code_of(cls))
        for name, cls in error_classes().items()
        if name in tree and tree[name].exit_code != exit_code_of(cls)
    }
    assert not wrong, f"(documented, actual) exit codes differ: {wrong}"
