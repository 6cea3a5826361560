"""Trial program for tests: the first run (per marker path) sleeps a minute, later runs finish at once."""

from __future__ import annotations

import os
import sys
import time

marker = sys.argv[1]
if not os.path.exists(marker):
    with open(marker, "w") as fh:
        fh.write(str(os.getpid()))
    print(f"pid={os.getpid()}", flush=True)
    time.sleep(60)
print("loss=1.0", flush=True)
