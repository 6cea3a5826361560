"""Numbers as Katib writes them: text on the wire, numbers in the domain."""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["format_value", "number_or_text", "parse_number"]


def parse_number(text: str) -> int | float:
    """Parse '3' -> 3, '0.5' -> 0.5; raises ValueError for anything else (incl. nan/inf).

    An integer must fit a float too (|n| <= 1.8e308): ranges, grids and samplers do float
    arithmetic on every bound, and a 400-digit one would overflow there.
    """
    s = str(text).strip()
    try:
        number = int(s)
    except ValueError:
        pass
    else:
        if not -sys.float_info.max <= number <= sys.float_info.max:
            raise ValueError(f"not a finite number: {s[:20]}... ({len(s)} characters)")
        return number
    value = float(s)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def format_value(value: Any) -> str:
    """Canonical wire text for an assignment value (ints without '.0', floats repr)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    return str(value)


def number_or_text(value: Any) -> Any:
    """Numbers written as text ('3', Katib's categorical values) become numbers."""
    if isinstance(value, str):
        try:
            return parse_number(value)
        except ValueError:
            return value
    return value
