"""Text from trials and experiment files made safe to print on a terminal.

A parameter value, a line of trial output or a metric captured as text may hold terminal
control sequences (`\\x1b]0;title\\x07` retitles the window, `\\r\\x1b[2K` erases the line
kubenas just printed) or bidirectional overrides that reorder what is shown. Everything
kubenas prints that did not come from kubenas itself goes through `printable`, which shows
such characters as Python escapes instead of sending them to the terminal.
"""

from __future__ import annotations

__all__ = ["printable"]

# C0 and C1 control characters, DEL, and the Unicode bidirectional controls.
_UNSAFE = [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
           *range(0x2066, 0x206A), 0x2028, 0x2029]
_ESCAPES = {code: repr(chr(code))[1:-1] for code in _UNSAFE}


def printable(text: str, keep_newlines: bool = False) -> str:
    """`text` with every control character shown as its escape (`\\x1b`, `\\r`, `\\u202e`).
    With `keep_newlines`, `\\n` stays a line break (a multi-line message)."""
    escaped = text.translate(_ESCAPES) if not keep_newlines else "\n".join(
        part.translate(_ESCAPES) for part in text.split("\n"))
    return escaped
