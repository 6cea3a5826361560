"""`python -m trainer.enas ...` — Katib's ENAS trial command."""

from __future__ import annotations

import sys

from trainer.enas.main import main

if __name__ == "__main__":
    sys.exit(main())
