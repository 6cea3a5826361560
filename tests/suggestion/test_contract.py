"""Every registered algorithm keeps the shared contract (tests/suggestion/contract.py).

Parametrised over the registry at collection: an algorithm whose module cannot be imported
fails collection (and so the run), it is never skipped.
"""

from __future__ import annotations

from typing import ClassVar

from suggestion.algorithms.registry import algorithm_class, algorithm_names
from tests.suggestion.contract import AlgorithmContract


class TestRegisteredAlgorithm(AlgorithmContract):
    algorithms: ClassVar[tuple[str, ...]] = tuple(algorithm_names())
    # Contract spaces an algorithm must refuse, with the field its error names.
    rejected: ClassVar[dict[str, dict[str, str]]] = {
        # A 3-node micro grid has ~10^17 points: refused, naming the search_mode that makes it.
        "grid": {"hpo_continuous": "parameters[0].feasibleSpace.step", "nas_micro": "search_mode"},
        # DARTS searches its own supernet: search_mode is an unknown setting to it.
        "darts": {"nas_micro": "search_mode", "nas_nb201": "search_mode"},
        # One-shot ENAS has macro and micro supernets; a NAS-Bench-201 cell has no supernet here.
        "enas-oneshot": {"nas_nb201": "search_mode"},
    }
    # Hyperband's budget parameter, with r_l and eta whose budgets (int(r_l * eta^-k)) lie in
    # its feasible space: 1 and 3 layers; depth 2, 6 and 18.
    algorithm_settings: ClassVar[dict[str, dict[str, dict[str, str]]]] = {
        "hyperband": {"hpo_grid": {"resource_name": "num_layers", "r_l": "3", "eta": "3"},
                      "hpo_continuous": {"resource_name": "depth", "r_l": "18", "eta": "3"}},
    }
    # Katib's pbt service refuses to start without these three.
    required_settings: ClassVar[dict[str, dict[str, str]]] = {
        "pbt": {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "5",
                "truncation_threshold": "0.2"},
    }


def test_every_registered_algorithm_names_itself() -> None:
    for name in algorithm_names():
        assert algorithm_class(name).name == name
