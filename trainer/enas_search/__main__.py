"""`python -m trainer.enas_search`."""

from __future__ import annotations

import sys

from trainer.enas_search.main import main

if __name__ == "__main__":
    sys.exit(main())
