"""Build history: a record of every build (completed, failed or canceled) in the data root,
read by `polybuild history ls|inspect|logs|rm` as buildx's history commands read BuildKit's."""

from polybuild.history.capture import STEP_LOG_LIMIT, capture_steps
from polybuild.history.naming import build_name
from polybuild.history.record import (
    CANCELED,
    COMPLETED,
    ERROR,
    BuildRecord,
    LogChunk,
    NodeRecord,
    StepRecord,
    WarningRecord,
    new_ref,
)
from polybuild.history.store import MAX_ENTRIES, HistoryStore

__all__ = [
    "CANCELED",
    "COMPLETED",
    "ERROR",
    "MAX_ENTRIES",
    "STEP_LOG_LIMIT",
    "BuildRecord",
    "HistoryStore",
    "LogChunk",
    "NodeRecord",
    "StepRecord",
    "WarningRecord",
    "build_name",
    "capture_steps",
    "new_ref",
]
