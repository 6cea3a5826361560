"""What a local run is (`RunSetup`) and the services it talks to (`RunServices`): the runner's inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.grpc_clients import EarlyStoppingClient, SuggestionClient
from controller.local.plan import TrialPlan

__all__ = ["RunServices", "RunSetup"]


@dataclass(frozen=True)
class RunSetup:
    """What one local run is: the experiment, how its trials start, where it keeps things."""

    experiment: Any
    plan: TrialPlan
    proto: Any                # the Experiment message the services are asked about
    workdir: Path
    file: Path                # the Experiment YAML, for the --resume hint
    cwd: str                  # where trial processes run
    parallel: int


@dataclass
class RunServices:
    """The services a local run talks to (`run.py` starts and stops them)."""

    suggestion: SuggestionClient
    # Called once if the suggestion server is lost (UNAVAILABLE); returns a client of a new one.
    restart_suggestion: Callable[[], SuggestionClient] | None = None
    # None: no spec.earlyStopping
    early_stopping: EarlyStoppingClient | None = None
    # Push trials report to this DBManager
    db_address: str | None = None
    # Called when no more suggestions are needed (the server may shut down meanwhile)
    on_loop_end: Callable[[], None] = lambda: None
