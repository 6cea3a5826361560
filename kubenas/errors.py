"""The one shape of a refused value: which field, what value, what is allowed.

Every error that echoes a bad input derives from `InvalidValue`, so each says the same
three things the same way (`<field>: invalid value <value>: <allowed>`, each part shortened
by `error_text`), and callers can read `field`, `value` and `allowed` from any of them.
"""

from __future__ import annotations

from typing import Any

from kubenas.error_text import invalid_value

__all__ = ["InvalidValue"]


class InvalidValue(ValueError):
    """`value` given for `field` is refused; `allowed` says what would be accepted.

    `where` (a class attribute) names the input the field belongs to when the field alone
    would not (`katib-config`); it is put in front of the field in the message only.
    """

    where = ""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(invalid_value(f"{self.where}{field}", value, allowed))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its three parts, not from the message: it crosses process boundaries.
        return (type(self), (self.field, self.value, self.allowed))
