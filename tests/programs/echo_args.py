"""Trial program for tests: prints its argv as JSON (proves args arrive verbatim, no shell)."""

from __future__ import annotations

import json
import os
import sys

print("ARGV=" + json.dumps(sys.argv[1:]), flush=True)
print("TRIAL=" + os.environ.get("KATIB_TRIAL_NAME", ""), flush=True)
print("GREETING=" + os.environ.get("GREETING", ""), flush=True)
print("CUDA=" + os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
print("CWD=" + os.getcwd(), flush=True)
print("loss=0.5", flush=True)
