"""How `kubenas run` ends: its exit codes, and `RunError` for bad input."""

from __future__ import annotations

from kubenas.printable import printable

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_SUCCEEDED", "RunError"]

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class RunError(Exception):
    """Bad input to `kubenas run`; each line names the field or flag, the value and what is allowed."""

    def __init__(self, *lines: str) -> None:
        # values quoted from the experiment or a trial may hold terminal control sequences
        self._lines = [printable(line) for line in lines if line]
        super().__init__("\n".join(self._lines))

    def lines(self) -> list[str]:
        return list(self._lines)
