"""How workflow runs are scheduled, checkpointed, resumed and cancelled."""

from backend.executor.checkpoints import open_checkpointer
from backend.executor.local import LocalExecutor

__all__ = ["LocalExecutor", "open_checkpointer"]
