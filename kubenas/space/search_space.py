"""The search space an algorithm is given: HPO parameters or a nasConfig, never both."""

from __future__ import annotations

from dataclasses import dataclass

from kubenas.space.errors import SpaceError
from kubenas.space.nas import NasConfig
from kubenas.space.parameters import ParameterSpec

__all__ = ["SearchSpace"]


@dataclass(frozen=True)
class SearchSpace:
    """Exactly one of `parameters` (HPO) or `nas_config` (NAS) is set."""

    parameters: tuple[ParameterSpec, ...] = ()
    nas_config: NasConfig | None = None

    @property
    def is_nas(self) -> bool:
        return self.nas_config is not None

    def check(self) -> None:
        if self.nas_config is not None:
            if self.parameters:
                raise SpaceError("parameters", [p.name for p in self.parameters], "exactly one of parameters or nasConfig may be set")
            self.nas_config.check()
            return
        if not self.parameters:
            raise SpaceError("parameters", [], "exactly one of parameters or nasConfig must be set")
        seen: set[str] = set()
        for i, p in enumerate(self.parameters):
            if not p.name:
                raise SpaceError(f"parameters[{i}].name", p.name, "must be a non-empty string")
            if p.name in seen:
                raise SpaceError(f"parameters[{i}].name", p.name, "parameter names must be unique")
            seen.add(p.name)
            p.check(f"parameters[{i}].")
