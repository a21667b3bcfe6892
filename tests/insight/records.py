"""Build records for the report's tests: one build of linux/amd64 and linux/arm64 on this
machine, started at `t0` and lasting `seconds`, with the given steps and fields."""

from __future__ import annotations

from polybuild.history.record import BuildRecord, NodeRecord, StepRecord, new_ref

AMD, ARM = "linux/amd64", "linux/arm64"


def build_record(t0: float, seconds: float, *steps: StepRecord, **fields: object) -> BuildRecord:
    values: dict[str, object] = {
        "ref": new_ref(),
        "name": "app",
        "builder": "default",
        "started": t0,
        "completed": t0 + seconds,
        "status": "completed",
        "platforms": (AMD, ARM),
        "nodes": (NodeRecord("this machine", (AMD, ARM)),),
        "steps": steps,
    }
    values.update(fields)
    return BuildRecord(**values)  # type: ignore[arg-type]
