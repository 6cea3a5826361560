"""Trial program for tests: starts a child that sleeps, then sleeps itself (process-group kill)."""

from __future__ import annotations

import subprocess
import sys
import time

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(f"child={child.pid}", flush=True)
time.sleep(60)
