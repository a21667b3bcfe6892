"""Build insight: what a finished build's record says about where its time went.

`advise` reads a build's history record and its Dockerfile and says which emulated RUN steps
to move to the build platform (cross-compiling), with the line to change.
"""

from __future__ import annotations

from polybuild.insight.advisor import ESTIMATE, FIX, HISTORY, TWIN, Advice, advise
from polybuild.insight.step_map import StepName, parse_step_name

__all__ = ["ESTIMATE", "FIX", "HISTORY", "TWIN", "Advice", "StepName", "advise", "parse_step_name"]
