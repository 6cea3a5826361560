"""`python -m trainer.darts` (also what torchrun runs: `torchrun -m trainer.darts ...`)."""

from __future__ import annotations

import sys

from trainer.darts.main import main

if __name__ == "__main__":
    sys.exit(main())
