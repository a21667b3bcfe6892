"""`--chmod` values: octal (BuildKit replaces the permission bits) or chmod(1) symbolic clauses."""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass

from polybuild.fileops.errors import FileOpError

__all__ = ["ChmodSpec", "parse_chmod"]

_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007}
_CLAUSE = re.compile(r"([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)\Z")
_ACTION = re.compile(r"([-+=])([ugo]|[rwxXst]*)")


@dataclass(frozen=True, slots=True)
class ChmodSpec:
    """A parsed `--chmod`; `apply(mode)` gives the new permission bits for one entry."""

    text: str
    octal: int | None = None
    clauses: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def apply(self, mode: int) -> int:
        """New `st_mode & 0o7777` for an entry whose current `st_mode` is `mode`."""
        if self.octal is not None:
            # The whole mode, set-id and sticky bits included (BuildKit since fsutil #168 fixed
            # moby/buildkit#3920, where --chmod=4755 lost its setuid bit).
            return self.octal
        is_dir = stat.S_ISDIR(mode)
        perm = mode & 0o7777
        for who, actions in self.clauses:
            mask = 0
            for w in who or "a":
                mask |= 0o7777 if w == "a" else _WHO[w]
            for op, what in actions:
                bits = _bits(what, perm, mode, is_dir) & mask
                if op == "+":
                    perm |= bits
                elif op == "-":
                    perm &= ~bits
                else:
                    # "=" clears what `who` covers (except set-id bits of directories, as chmod)
                    clear = mask & (0o777 | (0 if is_dir else 0o6000) | 0o1000)
                    perm = (perm & ~clear) | bits
        return perm


def _bits(what: str, perm: int, mode: int, is_dir: bool) -> int:
    if what in _WHO:
        # copy another class's permissions, e.g. g=u
        shift = {"u": 6, "g": 3, "o": 0}[what]
        rwx = (perm >> shift) & 0o7
        return rwx << 6 | rwx << 3 | rwx
    bits = 0
    for ch in what:
        if ch == "r":
            bits |= 0o444
        elif ch == "w":
            bits |= 0o222
        elif ch == "x":
            bits |= 0o111
        elif ch == "X":
            if is_dir or perm & 0o111:
                bits |= 0o111
        elif ch == "s":
            bits |= 0o6000
        elif ch == "t":
            bits |= 0o1000
    return bits


def parse_chmod(text: str, *, instruction: str = "") -> ChmodSpec | None:
    """None for an empty value; octal up to 07777 or comma-separated symbolic clauses."""
    text = text.strip()
    if not text:
        return None
    bad_octal = (
        f"invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777"
    )
    if text.isdigit():
        try:
            value = int(text, 8)
        except ValueError:
            raise FileOpError(bad_octal, instruction=instruction) from None
        if value > 0o7777:
            raise FileOpError(bad_octal, instruction=instruction)
        return ChmodSpec(text, octal=value)
    clauses = []
    for clause in text.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            raise FileOpError(
                f"invalid chmod parameter: '{text}'",
                instruction=instruction,
                hint="use octal (0755) or chmod(1) symbolic clauses such as u=rwX,go=rX",
            )
        actions = tuple((m.group(1), m.group(2)) for m in _ACTION.finditer(match.group(2)))
        clauses.append((match.group(1), actions))
    return ChmodSpec(text, clauses=tuple(clauses))
