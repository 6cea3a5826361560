"""What one `kubenas bench nb201` invocation asks for, parsed from flag text once.

Every parse error is a `BenchError` naming the flag, the value and what is allowed, so
the CLI prints one line and exits 2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DATASETS",
    "DEFAULT_ALGORITHMS",
    "DEFAULT_QUERIES",
    "MAX_QUERIES",
    "NB201_TIME_SCALE_12_EPOCHS",
    "REPORT_BUDGETS",
    "BenchConfig",
    "BenchError",
    "Dataset",
    "check_budget",
    "parse_algorithms",
    "parse_datasets",
    "parse_seeds",
    "parse_settings",
]


class BenchError(Exception):
    """Bad input to the bench (a flag, a setting) or a missing prerequisite; one clear line."""


@dataclass(frozen=True)
class Dataset:
    """One NB201 dataset: the name on our command line, the package's table name, and the
    optimum of the mean validation accuracy the issue quotes (checked against the data)."""

    name: str
    table: str
    optimum: float
    label: str


# The only place that knows the datasets; the paper's names, the package's file names.
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("cifar10", "cifar10", 91.61, "CIFAR-10"),
        Dataset("cifar100", "cifar100", 73.49, "CIFAR-100"),
        Dataset("imagenet16-120", "imagenet", 46.73, "ImageNet16-120"),
    )
}

DEFAULT_ALGORITHMS = ("random", "evolution", "bayesian", "enas", "tpe")
DEFAULT_QUERIES = 100
# A safety cap for time-budget runs without --queries: far more than any budget here buys.
MAX_QUERIES = 100_000
# Queries at which the table reports the best accuracy (the budgets).
REPORT_BUDGETS = (10, 50, 100, 300)
# NB201's own search experiments (its R_EA.py / RANDOM.py) charge each query the time of
# the 12-epoch proxy training, not the 200 epochs this package's train_time measures.
NB201_TIME_SCALE_12_EPOCHS = 12 / 200

_SETTING = re.compile(r"(?P<algo>[^:=\s]+):(?P<name>[^=\s]+)=(?P<value>.*)", re.DOTALL)


@dataclass(frozen=True)
class BenchConfig:
    """A fully parsed bench request. `queries` None = only the time budget stops a run."""

    algorithms: tuple[str, ...]
    datasets: tuple[Dataset, ...]
    seeds: tuple[int, ...]
    out: Path
    queries: int | None = DEFAULT_QUERIES
    budget_seconds: float | None = None
    parallel: int = 1
    time_scale: float = 1.0
    settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def query_cap(self) -> int:
        return self.queries if self.queries is not None else MAX_QUERIES


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_algorithms(text: str | None, registered: Sequence[str]) -> tuple[str, ...]:
    """`--algorithms` (comma list). Default: the issue's set, those that are registered."""
    if text is None:
        return tuple(a for a in DEFAULT_ALGORITHMS if a in registered)
    names = _items(text)
    if not names:
        raise BenchError(f"--algorithms: invalid value {text!r}: give a comma list of: {', '.join(registered)}")
    for name in names:
        if name not in registered:
            raise BenchError(f"--algorithms: invalid value {name!r}: must be one of: {', '.join(registered)}")
    if len(set(names)) != len(names):
        raise BenchError(f"--algorithms: invalid value {text!r}: names a search algorithm twice")
    return tuple(names)


def parse_datasets(text: str) -> tuple[Dataset, ...]:
    """`--datasets` (comma list of cifar10, cifar100, imagenet16-120)."""
    names = _items(text)
    allowed = ", ".join(DATASETS)
    if not names:
        raise BenchError(f"--datasets: invalid value {text!r}: give a comma list of: {allowed}")
    out: list[Dataset] = []
    for name in names:
        dataset = DATASETS.get(name.lower())
        if dataset is None:
            raise BenchError(f"--datasets: invalid value {name!r}: must be one of: {allowed}")
        if dataset not in out:
            out.append(dataset)
    return tuple(out)


def parse_seeds(count: int | None, seed_list: str | None) -> tuple[int, ...]:
    """`--seeds N` (seeds 0..N-1, default 10) or `--seed-list 3,7,11`; not both."""
    if count is not None and seed_list is not None:
        raise BenchError(f"--seed-list: invalid value {seed_list!r}: give either --seeds or --seed-list, not both")
    if seed_list is None:
        n = 10 if count is None else count
        if not 1 <= n <= 10_000:
            raise BenchError(f"--seeds: invalid value {n!r}: must be an integer in [1, 10000]")
        return tuple(range(n))
    seeds: list[int] = []
    for item in _items(seed_list) or [seed_list]:
        try:
            seed = int(item)
        except ValueError:
            seed = -1
        if not 0 <= seed < 2**32:
            raise BenchError(f"--seed-list: invalid value {item!r}: must be a comma list of integers in "
                             f"[0, 4294967295]")
        if seed in seeds:
            raise BenchError(f"--seed-list: invalid value {seed_list!r}: seed {seed} is listed twice")
        seeds.append(seed)
    return tuple(seeds)


def parse_settings(items: Iterable[str], algorithms: Sequence[str]) -> dict[str, dict[str, str]]:
    """`--setting ALGO:NAME=VALUE` (repeatable) into {algorithm: {name: value}}.

    The bench owns `search_mode` (always nb201) and `random_state` (the run's seed), so
    neither may be set here; the server validates the rest (see `BenchRunner.validate`)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        match = _SETTING.fullmatch(item.strip())
        if match is None:
            raise BenchError(f"--setting: invalid value {item!r}: must read ALGO:NAME=VALUE, "
                             f"e.g. evolution:population_size=20")
        algo, name, value = match["algo"], match["name"], match["value"].strip()
        if algo not in algorithms:
            raise BenchError(f"--setting: invalid value {item!r}: {algo!r} is not a benchmarked algorithm "
                             f"(--algorithms: {', '.join(algorithms)})")
        if name in ("search_mode", "random_state"):
            raise BenchError(f"--setting: invalid value {item!r}: the bench sets {name} itself "
                             f"(search_mode=nb201, random_state=each seed)")
        if name in out.get(algo, {}):
            raise BenchError(f"--setting: invalid value {item!r}: {algo}:{name} is given twice")
        out.setdefault(algo, {})[name] = value
    return out


def check_budget(queries: int | None, budget_seconds: float | None, time_scale: float) -> None:
    """The budget flags together: positive, finite."""
    if queries is not None and not 1 <= queries <= MAX_QUERIES:
        raise BenchError(f"--queries: invalid value {queries!r}: must be an integer in [1, {MAX_QUERIES}]")
    if budget_seconds is not None and not (math.isfinite(budget_seconds) and budget_seconds > 0):
        raise BenchError(f"--budget-seconds: invalid value {budget_seconds!r}: must be a positive number "
                         f"of simulated seconds, e.g. 12000")
    if not (math.isfinite(time_scale) and 0 < time_scale <= 100):
        raise BenchError(f"--time-scale: invalid value {time_scale!r}: must be a number in (0, 100]; "
                         f"{NB201_TIME_SCALE_12_EPOCHS:g} charges NB201's 12-epoch proxy time")
