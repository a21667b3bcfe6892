"""Root filesystems for containers: unpacked layers by diff-id, overlay or copy snapshots."""

from __future__ import annotations

from polybuild.snapshot.layerstore import LayerStore
from polybuild.snapshot.snapshotter import Snapshot, Snapshotter

__all__ = ["LayerStore", "Snapshot", "Snapshotter"]
