"""What `polybuild check` reports: one Problem per thing wrong, with its repair if it has one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# What a repair did, in a few words ("removed", "dropped", "unmounted and removed").
Repair = Callable[[], str]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the data root, named by digest, image name or path.

    `repair` is what `--repair` does about it; `advice` is what the user must do when there
    is nothing safe to do automatically (an image whose content is lost is never deleted).
    """

    area: str  # blob, image, cache, layer, lease, mount, container, leftover
    subject: str
    detail: str
    repair: Repair | None = field(default=None, compare=False)
    advice: str = ""

    def line(self, outcome: str | None = None) -> str:
        """The report line; `outcome` is what a repair did (or why it failed)."""
        text = f"{self.area} {self.subject}: {self.detail}"
        if outcome:
            return f"{text}; {outcome}"
        if self.advice:
            return f"{text}; {self.advice}"
        return text


@dataclass(frozen=True, slots=True)
class Outcome:
    """A problem and, with --repair, what was done about it (`fixed` when it is gone)."""

    problem: Problem
    action: str | None = None
    fixed: bool = False

    def line(self) -> str:
        return self.problem.line(self.action)
