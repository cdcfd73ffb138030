"""The run engine: the run service, its executors (in-process, job queue), store and checkpoints.

Nothing here imports the web framework; the API, the CLI and the worker all go through
``RunService``.
"""

from backend.runs.records import TERMINAL_STATUSES, Usage, WorkflowRecord, WorkflowStatus
from backend.runs.runtime import build_providers, open_runtime
from backend.runs.service import RunService, Submission

__all__ = [
    "TERMINAL_STATUSES",
    "RunService",
    "Submission",
    "Usage",
    "WorkflowRecord",
    "WorkflowStatus",
    "build_providers",
    "open_runtime",
]
