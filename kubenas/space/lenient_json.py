"""JSON as Katib's services write it: real JSON, or Python literals with single quotes."""

from __future__ import annotations

import ast
import json
from typing import Any

from kubenas.space.errors import SpaceError

__all__ = ["loads_lenient"]


def loads_lenient(text: str, what: str = "value") -> Any:
    """Parse JSON, or Katib's Python-literal style with single quotes.

    Raises SpaceError naming `what` when neither parses.
    """
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise SpaceError(what, text, "must be JSON (double or Katib-style single quotes)") from None
