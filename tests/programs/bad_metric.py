"""Trial program for tests: prints the objective with a value that is not a number."""

from __future__ import annotations

print("loss=abc", flush=True)
print("loss = not-a-number", flush=True)
