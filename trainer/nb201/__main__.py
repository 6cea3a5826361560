"""`python -m trainer.nb201 ...` — the NB201 trial command."""

from __future__ import annotations

import sys

from trainer.nb201.main import main

if __name__ == "__main__":
    sys.exit(main())
