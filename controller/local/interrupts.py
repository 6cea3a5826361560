"""SIGINT and SIGTERM during a local run only set a flag; the run acts on it at safe points.

A KeyboardInterrupt raised from a signal handler can land inside gRPC waits, subprocess
start-up or a lock held by logging, where it is swallowed or leaves the lock taken.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["SignalFlag"]


class SignalFlag:
    """While installed, SIGINT and SIGTERM set `signum` (the latest one) instead of raising.
    Outside the main thread nothing is installed (Python allows handlers only there)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> SignalFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.signum = signum

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal came (the start-up's safe points)."""
        if self.signum is not None:
            raise KeyboardInterrupt

    def restore(self) -> None:
        """Put back the handlers found at `install`."""
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}
