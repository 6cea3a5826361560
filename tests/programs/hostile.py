"""Trial program for tests: misbehaves with its output or its process as `mode` says.

nonewline  the metric is the last output, without a trailing newline
bigline    6 MB without a newline, then the metric on the same line
binary     random bytes (invalid UTF-8, NULs) around the metric lines
fork       a child (same process group) keeps stdout open for 60 s after the trial exits
setsid     a child in its own session keeps stdout open for 60 s after the trial exits
closeout   closes stdout and stderr early, then keeps working and exits 0
ignoreterm ignores SIGTERM and sleeps (must be SIGKILLed on Ctrl-C)
fifo       writes a metric to the metrics file (argv[2]), then replaces it with a FIFO and sleeps
zerolink   the same, but replaces it with a symbolic link to /dev/zero
evilline   prints a line on which a backtracking metricsFormat filter runs for hours, then sleeps
flood      prints metric lines as fast as it can, forever
ansi       prints terminal control sequences around its metric
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

mode = sys.argv[1]
out = sys.stdout.buffer
if mode == "nonewline":
    out.write(b"epoch 1\nloss=0.5")
elif mode == "bigline":
    for _ in range(96):
        out.write(b"#" * 65536)
    out.write(b" loss=0.25\n")
elif mode == "binary":
    noise = random.Random(1).randbytes(200_000).replace(b"\n", b"")
    out.write(noise + b"\nloss=0.125\n" + noise + b"\x00\xff\xfe")
elif mode in ("fork", "setsid"):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=mode == "setsid")
    out.write(b"loss=0.0625\n")
elif mode == "closeout":
    out.write(b"loss=0.03125\n")
    out.flush()
    os.close(1)
    os.close(2)
    time.sleep(0.5)
    with open(os.devnull, "w") as sink:
        sys.stdout = sys.stderr = sink
    sys.exit(0)
elif mode == "ignoreterm":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out.write(b"ready loss=1\n")
    out.flush()
    time.sleep(120)
elif mode in ("fifo", "zerolink"):
    path = sys.argv[2]
    with open(path, "w") as fh:
        fh.write("loss=1\n")
    time.sleep(0.5)
    os.unlink(path)
    if mode == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)
    out.write(b"swapped\n")
    out.flush()
    time.sleep(60)
elif mode == "evilline":
    out.write(b"loss=" + b"a" * 20_000 + b"?\n")
    out.flush()
    time.sleep(60)
elif mode == "flood":
    line = b"loss=1 " + b"#" * 100 + b"\n"
    block = line * 1000
    while True:
        out.write(block)
elif mode == "ansi":
    out.write(b"\r\x1b[2K\x1b]0;pwned\x07 loss=0.5\n")
else:
    raise SystemExit(f"unknown mode {mode!r}")
out.flush()
