"""Helpers for testing polybuild and projects that use it (fixtures, not part of the core)."""
