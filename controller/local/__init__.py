"""`kubenas run`: the local runtime (trials as processes on this machine, SQLite in the work directory).

The CLI needs only `run_experiment` and `RunError`; the modules of this package are its parts.
"""

from controller.local.errors import EXIT_INTERRUPTED, RunError
from controller.local.run import run_experiment

__all__ = ["EXIT_INTERRUPTED", "RunError", "run_experiment"]
