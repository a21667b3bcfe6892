"""Step names back to the Dockerfile: which stage and instruction `[linux/arm64 build 2/3] RUN
make` ran, and whether that stage runs on the build platform.

Names are BuildKit's (imagebuild/names.py makes them): an optional platform (`linux/arm64`,
or `linux/amd64->arm64` when the step ran on the build platform for another), the stage's
label (its AS name, `stage-N`, none in a one-stage file), the step's number and the stage's
total. A stage's steps are numbered FROM an image first (not FROM scratch or another stage),
then each RUN, COPY, ADD and WORKDIR, so the total says whether the FROM was counted; when the
numbers do not fit the file (another Dockerfile, say), the instruction's text decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from polybuild.dockerfile import Dockerfile, Stage
from polybuild.dockerfile import instructions as ins
from polybuild.dockerfile.step_names import run_name

COUNTED = (ins.Run, ins.Copy, ins.Workdir)  # ADD is a Copy
_NAME = re.compile(
    r"^\[(?:(?P<platform>[^\s\]]*/[^\s\]]*) )?(?:(?P<stage>[^\s/\]]+) )?"
    r"\s*(?P<number>[0-9]+)/(?P<total>[0-9]+)\] (?P<text>.*)$",
    re.DOTALL,
)
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")
_STAGE_INDEX = re.compile(r"^stage-([0-9]+)$")


@dataclass(frozen=True, slots=True)
class StepName:
    """A step's name taken apart; `platform` as written (`linux/amd64->arm64` too)."""

    platform: str
    stage: str  # the label: AS name, stage-N, "" in a one-stage file
    number: int
    total: int
    text: str  # `RUN make`

    @property
    def cross(self) -> bool:
        """Named as run on the build platform for another target."""
        return "->" in self.platform


def parse_step_name(name: str) -> StepName | None:
    """The parts of a Dockerfile step's name; None for other vertices (`[internal] ...`,
    `exporting to image`)."""
    match = _NAME.match(name)
    if match is None:
        return None
    return StepName(
        match["platform"] or "",
        match["stage"] or "",
        int(match["number"]),
        int(match["total"]),
        match["text"],
    )


def find_stage(dockerfile: Dockerfile, label: str) -> Stage | None:
    """The stage a label names: its AS name, `stage-N`, or the only stage for no label."""
    if not label:
        return dockerfile.stages[0] if len(dockerfile.stages) == 1 else None
    stage = dockerfile.stage_by_name(label)
    if stage is not None:
        return stage
    index = _STAGE_INDEX.match(label)
    if index is not None and int(index[1]) < len(dockerfile.stages):
        return dockerfile.stages[int(index[1])]
    return None


def find_run(dockerfile: Dockerfile, step: StepName) -> tuple[Stage, ins.Run] | None:
    """The stage and RUN instruction a step ran, None when the file has no such RUN."""
    stage = find_stage(dockerfile, step.stage)
    if stage is None or not step.text.startswith("RUN "):
        return None
    counted = [c for c in stage.commands if isinstance(c, COUNTED)]
    first = step.total - len(counted)  # 1 when the FROM (an image) was counted, else 0
    position = step.number - 1 - first
    if first in (0, 1) and 0 <= position < len(counted):
        command = counted[position]
        if isinstance(command, ins.Run):
            return stage, command
    # the numbers do not fit: the one RUN whose unexpanded text is the step's
    runs = [c for c in stage.commands if isinstance(c, ins.Run)]
    same = [c for c in runs if run_name(c, {}, dockerfile.escape_token) == step.text]
    return (stage, same[0]) if len(same) == 1 else None


def _variables(value: str) -> list[str]:
    return [a or b for a, b in _VARIABLE.findall(value)]


def _stage_platform(dockerfile: Dockerfile, stage: Stage) -> str:
    """The --platform a stage runs with: its own, else the one of the stage it starts from."""
    seen: set[int] = set()
    while not stage.platform and stage.index not in seen:
        seen.add(stage.index)
        parent = dockerfile.stage_by_name(stage.base)
        if parent is None or parent.index >= stage.index:
            break
        stage = parent
    return stage.platform


def runs_per_target(dockerfile: Dockerfile, stage: Stage) -> bool:
    """Whether a stage runs once per target platform (no --platform, or one that reads TARGET*
    arguments), so moving it to the build platform is advice worth giving. A stage on
    `$BUILDPLATFORM` (or any BUILD* argument, also through a global ARG's default) already
    runs natively; one pinned to a fixed platform was pinned on purpose."""
    flag = _stage_platform(dockerfile, stage)
    if not flag:
        return True
    defaults = {d.key: d.default or "" for a in dockerfile.global_args for d in a.args}
    names: set[str] = set()
    pending = _variables(flag)
    while pending:
        name = pending.pop()
        if name in names:
            continue
        names.add(name)
        if not name.startswith(("BUILD", "TARGET")):
            pending += _variables(defaults.get(name, ""))
    if any(n.startswith("BUILD") for n in names):
        return False
    return any(n.startswith("TARGET") for n in names)


__all__ = ["StepName", "find_run", "find_stage", "parse_step_name", "runs_per_target"]
