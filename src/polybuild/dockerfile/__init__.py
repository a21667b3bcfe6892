"""The Dockerfile frontend: parse, type, and convert a Dockerfile into a per-platform build graph.

>>> from polybuild.dockerfile import BuildOptions, convert
>>> from polybuild.platforms import parse
>>> graph = convert("FROM alpine\\nRUN echo hi\\n", BuildOptions(), parse("linux/arm64"))
>>> graph.target.root.argv
('/bin/sh', '-c', 'echo hi')
"""

from __future__ import annotations

from polybuild.dockerfile.convert import (
    BuildGraph,
    BuildOptions,
    ImageResolver,
    StageGraph,
    convert,
    default_args,
    normalize_reference,
)
from polybuild.dockerfile.dump import dump, go_quote
from polybuild.dockerfile.graph_dump import graph_dump
from polybuild.dockerfile.ignore import IgnoreMatcher, ignore_file_for, load_patterns, read_patterns
from polybuild.dockerfile.instructions import Instruction, parse_instruction
from polybuild.dockerfile.mounts import MountSpec, parse_mount
from polybuild.dockerfile.parser import parse
from polybuild.dockerfile.shell import expand_word, expand_words
from polybuild.dockerfile.stages import Dockerfile, Stage, load
from polybuild.dockerfile.syntax import Heredoc, Location, Node, ParseResult

__all__ = [
    "BuildGraph",
    "BuildOptions",
    "Dockerfile",
    "Heredoc",
    "IgnoreMatcher",
    "ImageResolver",
    "Instruction",
    "Location",
    "MountSpec",
    "Node",
    "ParseResult",
    "Stage",
    "StageGraph",
    "convert",
    "default_args",
    "dump",
    "expand_word",
    "expand_words",
    "go_quote",
    "graph_dump",
    "ignore_file_for",
    "load",
    "load_patterns",
    "normalize_reference",
    "parse",
    "parse_instruction",
    "parse_mount",
    "read_patterns",
]
