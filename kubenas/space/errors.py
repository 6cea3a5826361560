"""The error of a malformed search space (or of a value checked against one)."""

from __future__ import annotations

from kubenas.errors import InvalidValue

__all__ = ["SpaceError"]


class SpaceError(InvalidValue):
    """A search space (or a value checked against it) is malformed.

    `field` is a dotted path relative to the space (e.g. `parameters[1].feasibleSpace.max`).
    """
