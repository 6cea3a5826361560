"""The search space an algorithm is given: HPO parameters or a nasConfig, never both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubenas.space.errors import SpaceError
from kubenas.space.nas import NasConfig
from kubenas.space.parameters import ParameterSpec

__all__ = ["SearchSpace", "name_problem", "presence_problem"]


@dataclass(frozen=True)
class SearchSpace:
    """Exactly one of `parameters` (HPO) or `nas_config` (NAS) is set."""

    parameters: tuple[ParameterSpec, ...] = ()
    nas_config: NasConfig | None = None

    @property
    def is_nas(self) -> bool:
        return self.nas_config is not None

    def check(self) -> None:
        problem = presence_problem(self.parameters, self.nas_config)
        if problem is not None:
            raise problem
        if self.nas_config is not None:
            self.nas_config.check()
            return
        seen: set[str] = set()
        for i, p in enumerate(self.parameters):
            problem = name_problem(i, p.name, seen)
            if problem is not None:
                raise problem
            p.check(f"parameters[{i}].")


def presence_problem(parameters: Sequence[ParameterSpec], nas_config: NasConfig | None) -> SpaceError | None:
    """Why a spec's `parameters` and `nasConfig` make no search space, or None."""
    if parameters and nas_config is not None:
        return SpaceError("nasConfig", "nasConfig", "exactly one of spec.parameters (HPO) or spec.nasConfig (NAS) may be set")
    if not parameters and nas_config is None:
        return SpaceError("parameters", [], "exactly one of spec.parameters (HPO) or spec.nasConfig (NAS) must be set")
    return None


def name_problem(index: int, name: str, seen: set[str]) -> SpaceError | None:
    """Why parameter `index` cannot be called `name` (empty, or taken: `seen` holds the names
    before it and gets this one added), or None."""
    taken = name in seen
    seen.add(name)
    if not name:
        return SpaceError(f"parameters[{index}].name", name, "must be a non-empty parameter name")
    if taken:
        return SpaceError(f"parameters[{index}].name", name, "parameter names must be unique")
    return None
