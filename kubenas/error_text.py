"""How every error message shows a value: shortened, so no input can make a huge message.

Errors echo what they refused (`field: invalid value ...: allowed`). A 20,000-item list or
a megabyte name echoed whole makes a message gRPC cannot carry (its status travels in
metadata, about 8 KB), and an integer past Python's 4,300-digit limit cannot even be
printed. Every error class that echoes a value builds its text with `invalid_value`; the
servers cap the final status message with `clip(..., MAX_STATUS_CHARS)` as well.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["MAX_STATUS_CHARS", "MAX_VALUE_CHARS", "clip", "invalid_value", "shorten"]

MAX_VALUE_CHARS = 200
MAX_FIELD_CHARS = 300
MAX_ALLOWED_CHARS = 600
# A gRPC status message travels in trailing metadata, which peers limit to 8 KB in all.
MAX_STATUS_CHARS = 2000

# Items of a long collection shown before "…"; more would be clipped anyway.
_ITEMS_SHOWN = 20


def clip(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def shorten(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """repr(value) in at most about `limit` characters, whatever the value's size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        digits = math.floor(math.log10(abs(value))) + 1  # log10 takes ints of any size
        return f"{'-' if value < 0 else ''}<an integer of about {digits} digits>"
    extra = ""
    if isinstance(value, (list, tuple)) and len(value) > _ITEMS_SHOWN:
        extra = f" ({len(value)} items)"
        value = type(value)(value[:_ITEMS_SHOWN])
    elif isinstance(value, Mapping) and len(value) > _ITEMS_SHOWN:
        extra = f" ({len(value)} entries)"
        value = dict(list(value.items())[:_ITEMS_SHOWN])
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) > _ITEMS_SHOWN:
        extra = f" ({len(value)} items)"
        value = list(value[:_ITEMS_SHOWN])
    try:
        text = repr(value)
    except ValueError:  # an integer nested in the value is past the digit limit
        text = f"<{type(value).__name__} too large to print>"
    return clip(text, limit) + extra


def invalid_value(field: str, value: object, allowed: str) -> str:
    """The one shape of a refused value: `<field>: invalid value <value>: <allowed>`, each part shortened."""
    return f"{clip(field, MAX_FIELD_CHARS)}: invalid value {shorten(value)}: {clip(allowed, MAX_ALLOWED_CHARS)}"
