"""The subset of GJSON path syntax that Katib's successCondition/failureCondition use.

Katib evaluates e.g. `status.conditions.#(type=="Complete")#|#(status=="True")#` on the
trial workload's JSON and treats a non-empty result as "condition met". Supported here:
dotted keys, array indexes, `#` (length), `#(key op value)` (first match) and
`#(key op value)#` (all matches) with op in `== != < <= > >=`, and `|` pipes. Anything
else raises GJsonError naming the expression, so a bad condition fails the trial loudly.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["GJsonError", "condition_met", "evaluate"]

_QUERY = re.compile(r"^#\(\s*([\w.\-]+)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*\)(#?)$")
_MISSING = object()


class GJsonError(ValueError):
    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        super().__init__(f"condition {expression!r}: {reason}")


def _split(expression: str) -> list[str]:
    """Split on `.` and `|` outside parentheses and quotes."""
    parts, depth, quote, current = [], 0, False, ""
    for ch in expression:
        if ch == '"':
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch in ".|" and depth == 0 and not quote:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p != ""]


def _literal(text: str, expression: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise GJsonError(expression, f"{text!r} is not a JSON literal (quote strings)") from None


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is _MISSING:
        return False
    try:
        return {
            "==": lambda: left == right, "!=": lambda: left != right,
            "<": lambda: left < right, "<=": lambda: left <= right,
            ">": lambda: left > right, ">=": lambda: left >= right,
        }[op]()
    except TypeError:
        return False


def _get(value: Any, key: str) -> Any:
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _step(value: Any, part: str, expression: str) -> Any:
    if part == "#":
        return len(value) if isinstance(value, list) else _MISSING
    query = _QUERY.match(part)
    if query:
        if not isinstance(value, list):
            return _MISSING
        key, op, raw, every = query.groups()
        right = _literal(raw, expression)
        matches = [item for item in value if _compare(_get(item, key), op, right)]
        if every:
            return matches
        return matches[0] if matches else _MISSING
    if part.startswith("#"):
        raise GJsonError(expression, f"unsupported query {part!r}")
    if isinstance(value, list):
        return value[int(part)] if part.isdigit() and int(part) < len(value) else _MISSING
    if isinstance(value, dict):
        return value.get(part, _MISSING)
    return _MISSING


def evaluate(obj: Any, expression: str) -> Any:
    """The value at `expression` in `obj`, or None when the path does not exist."""
    value = obj
    for part in _split(expression.strip()):
        value = _step(value, part, expression)
        if value is _MISSING:
            return None
    return value


def condition_met(obj: Any, expression: str) -> bool:
    """True if `expression` selects something non-empty (Katib's "condition exists")."""
    value = evaluate(obj, expression)
    return value not in (None, [], {}, "", False)
