"""Helpers for testing polybuild and projects that use it (fixtures, not part of the core).

`FakeRegistry` is an in-memory registry to pass as `transport=` to the registry client, `pull`
and `push` (polybuild.testing.registry).
"""

from polybuild.testing.registry import FakeRegistry, Fault, Seen

__all__ = ["FakeRegistry", "Fault", "Seen"]
