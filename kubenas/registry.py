"""A named table of interchangeable things: algorithms, trainers, ops, datasets, encodings.

Every registry is one `Registry`: entries in registration order, a name registered twice
refused when the module is imported, and an unknown name answered with `UnknownName`,
which lists the known ones. Lookups read like a dict (`REGISTRY[name]`, `name in
REGISTRY`, `list(REGISTRY)`), so a registry is data, not an if/elif on names.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

__all__ = ["DuplicateName", "Registry", "UnknownName", "import_target"]

T = TypeVar("T")


class UnknownName(KeyError):
    """A name no entry of the registry has; its text lists the known names."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} is not known; available: {', '.join(self.known)}"


class DuplicateName(ValueError):
    """Two entries under one name: the second would silently replace the first."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"{kind} {name!r} is registered twice")


class Registry(Mapping[str, T]):
    """`kind` names what the entries are ("algorithm", "dataset") in errors."""

    def __init__(self, kind: str, entries: Iterable[tuple[str, T]] = (),
                 unknown: type[UnknownName] = UnknownName) -> None:
        self.kind = kind
        self._unknown = unknown
        self._entries: dict[str, T] = {}
        for name, entry in entries:
            self.register(name, entry)

    def register(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise DuplicateName(self.kind, name)
        self._entries[name] = entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise self._unknown(self.kind, name, self._entries) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Every name, in registration order."""
        return list(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def import_target(target: str) -> Any:
    """The object a lazy entry names, `"package.module:attribute"`, imported on first use."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
