"""Merge: the layers of several chains stacked in order (COPY --link's result)."""

from __future__ import annotations

from collections.abc import Sequence

from polybuild.graph import ops
from polybuild.solver.ops.base import OpContext, direct_key
from polybuild.solver.results import Chain, Result


class MergeHandler:
    def result(self, op: ops.Merge, inputs: Sequence[Result], context: OpContext) -> Result:
        layers = tuple(layer for r in inputs if isinstance(r, Chain) for layer in r.layers)
        return Chain(layers, direct_key(op, inputs))
