"""Settings of the model-free searches: random, grid, sobol, evolution."""

from __future__ import annotations

from typing import Annotated

from kubenas.algorithm_settings.common import EncodedSearchSettings
from kubenas.algorithm_settings.model import Int, InvalidSettings, setting

__all__ = ["MAX_POPULATION", "EvolutionSettings", "GridSettings", "RandomSettings", "SobolSettings"]

MAX_POPULATION = 100_000


class RandomSettings(EncodedSearchSettings):
    """`random`: independent draws."""


class GridSettings(EncodedSearchSettings):
    """`grid`: every point in order (the seed is accepted for Katib; the order is fixed)."""


class SobolSettings(EncodedSearchSettings):
    """`sobol`: the scrambled Sobol sequence (the seed scrambles it)."""


class EvolutionSettings(EncodedSearchSettings):
    """`evolution`: regularised (aging) evolution.

    Defaults for small budgets: NATS-Bench / NAS-Bench-201's REA runs use a population of
    10 and tournaments of 3 (Real et al. used 100 and 25 over 20,000 models).
    """

    population_size: Annotated[Int, setting(
        "trials in the population (the newest ones); random points until it is full",
        ge=1, le=MAX_POPULATION)] = 10
    sample_size: Annotated[Int, setting(
        "members drawn for each tournament; the best one is mutated", ge=1, le=MAX_POPULATION)] = 3

    def check(self) -> None:
        if self.sample_size > self.population_size:
            raise InvalidSettings("sample_size", self.sample_size,
                                  f"must be an integer in [1, population_size] = [1, {self.population_size}]")
