"""One handler per op kind, registered by op type (see `base` for the two kinds)."""

from __future__ import annotations

from collections.abc import Mapping

from polybuild.graph import ops
from polybuild.solver.ops.base import (
    DirectHandler,
    Held,
    LayerHandler,
    OpContext,
    Step,
    direct_key,
    key_of,
)
from polybuild.solver.ops.exec import ExecHandler
from polybuild.solver.ops.file import CopyHandler, MkdirHandler
from polybuild.solver.ops.merge import MergeHandler
from polybuild.solver.ops.source import (
    ImageSourceHandler,
    InlineSourceHandler,
    LocalSourceHandler,
)

DIRECT_HANDLERS: Mapping[type[ops.Op], DirectHandler] = {
    ops.ImageSource: ImageSourceHandler(),
    ops.LocalSource: LocalSourceHandler(),
    ops.InlineSource: InlineSourceHandler(),
    ops.Merge: MergeHandler(),
}
LAYER_HANDLERS: Mapping[type[ops.Op], LayerHandler] = {
    ops.Exec: ExecHandler(),
    ops.Copy: CopyHandler(),
    ops.Mkdir: MkdirHandler(),
}

__all__ = [
    "DIRECT_HANDLERS",
    "LAYER_HANDLERS",
    "DirectHandler",
    "Held",
    "LayerHandler",
    "OpContext",
    "Step",
    "direct_key",
    "key_of",
]
