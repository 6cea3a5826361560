"""Trial program for tests: reports a (great) objective, then exits with status 1."""

from __future__ import annotations

import sys

print("loss=0.0", flush=True)
print("something went wrong", file=sys.stderr, flush=True)
sys.exit(1)
