"""Writers that commit what they wrote when their `with` block ends, and abandon it on an error.

The content store's BlobWriter and the layers' LayerWriter share this rule: a block that
raises must never make a half-written blob or layer look finished.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

__all__ = ["CommitOnExit"]


class CommitOnExit(abc.ABC):
    """A context manager: leaving the block commits (`_commit`); an exception abandons it."""

    @abc.abstractmethod
    def _commit(self) -> object:
        """Finish and make visible what was written."""

    @abc.abstractmethod
    def _abandon(self) -> None:
        """Throw away what was written; nothing becomes visible."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._commit()
        else:
            self._abandon()
