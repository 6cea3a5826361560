"""Algorithm settings: one pydantic model per algorithm, shared by the suggestion service and trainers.

`model` holds the mechanism (kinds, `setting(...)`, `parse_settings`, the error); the other
modules one family of algorithms each. See docs/contributing.md, "Adding an algorithm".
"""

from kubenas.algorithm_settings.model import (
    KATIB_NONE,
    AlgorithmSettings,
    Int,
    InvalidSettings,
    Number,
    allowed_text,
    none_spellings,
    parse_settings,
    setting,
)

__all__ = [
    "KATIB_NONE",
    "AlgorithmSettings",
    "Int",
    "InvalidSettings",
    "Number",
    "allowed_text",
    "none_spellings",
    "parse_settings",
    "setting",
]
