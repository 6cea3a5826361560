"""Text from trials and experiment files made safe to print on a terminal.

A parameter value, a line of trial output or a metric captured as text may hold terminal
control sequences (`\\x1b]0;title\\x07` retitles the window, `\\r\\x1b[2K` erases the line
kubenas just printed) or bidirectional overrides that reorder what is shown. Everything
kubenas prints that did not come from kubenas itself goes through `printable`, which shows
such characters as Python escapes instead of sending them to the terminal.
"""

from __future__ import annotations

__all__ = ["printable"]


def _escaped(text: str) -> str:
    if text.isprintable():  # the common case: nothing to do
        return text
    # Every character Python would not print as itself: C0/C1 controls, DEL, the Unicode
    # format characters (bidirectional overrides among them), separators, unassigned ones.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def printable(text: str, keep_newlines: bool = False) -> str:
    """`text` with every character that is not printable shown as its Python escape (`\\x1b`,
    `\\r`, `\\u202e`). With `keep_newlines`, `\\n` stays a line break (a multi-line message)."""
    if not keep_newlines:
        return _escaped(text)
    return "\n".join(_escaped(part) for part in text.split("\n"))
