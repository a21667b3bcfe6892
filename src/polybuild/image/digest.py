"""Content digests (`sha256:<hex>`): the Digest value, its grammar, and streaming hashing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from polybuild.errors import InvalidDigestError

__all__ = [
    "ALGORITHMS",
    "CANONICAL",
    "Digest",
    "Digester",
    "InvalidDigestError",
    "digest_chunks",
    "digest_file",
    "is_digest",
]

# Registered algorithms and the exact length of their lower-case hex encoding (image-spec).
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
CANONICAL = "sha256"
# The general grammar, so that a well-formed digest of an unknown algorithm gets a clearer error.
_GRAMMAR = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A content digest: the algorithm and the lower-case hex of the hash."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        length = ALGORITHMS.get(self.algorithm)
        if length is None:
            raise InvalidDigestError(
                f"unsupported digest algorithm {self.algorithm!r}",
                hint="digests look like sha256:<64 hex digits>",
            )
        if len(self.hex) != length or not all(c in "0123456789abcdef" for c in self.hex):
            raise InvalidDigestError(
                f"invalid {self.algorithm} digest {self.hex!r}: "
                f"expected {length} lower-case hex digits",
                hint="digests look like sha256:<64 hex digits>",
            )

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse `algorithm:hex`; raises InvalidDigestError naming what is wrong."""
        match = _GRAMMAR.match(text)
        if match is None:
            raise InvalidDigestError(
                f"invalid digest {text!r}", hint="digests look like sha256:<64 hex digits>"
            )
        return cls(match.group(1), match.group(2))

    @classmethod
    def of(cls, data: bytes, algorithm: str = CANONICAL) -> Digest:
        """The digest of `data`."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def short(self, length: int = 12) -> str:
        """The first `length` hex digits, as `docker images` shows an image ID."""
        return self.hex[:length]


def is_digest(text: str) -> bool:
    """True when `text` is a valid digest of a supported algorithm."""
    try:
        Digest.parse(text)
    except InvalidDigestError:
        return False
    return True


class Digester:
    """Hashes bytes as they stream past and counts them."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str = CANONICAL) -> None:
        if algorithm not in ALGORITHMS:
            raise InvalidDigestError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        """The digest of everything seen so far."""
        return Digest(self.algorithm, self._hash.hexdigest())


def digest_chunks(chunks: Iterable[bytes], algorithm: str = CANONICAL) -> tuple[Digest, int]:
    """The digest and total size of a stream of chunks."""
    digester = Digester(algorithm)
    for chunk in chunks:
        digester.update(chunk)
    return digester.digest(), digester.size


def digest_file(fileobj: BinaryIO, algorithm: str = CANONICAL) -> tuple[Digest, int]:
    """The digest and size of everything left to read in `fileobj`, read in 1 MiB chunks."""
    return digest_chunks(iter(lambda: fileobj.read(_CHUNK), b""), algorithm)
