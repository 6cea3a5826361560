"""The shared controller lives in the core without dragging torch into torch-free servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _torch_loaded_after(code: str) -> bool:
    out = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True, timeout=120, cwd=ROOT)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_random_and_grid_servers_never_import_torch() -> None:
    code = """
from kubenas.space import SearchSpace, ParameterSpec, ParameterType, FeasibleSpace
from kubenas.trials import Objective, ObjectiveType
from suggestion.algorithms.base import Problem
from suggestion.algorithms.registry import algorithm_class
from suggestion.service import make_server
import kubenas.enas_controller
space = SearchSpace(parameters=(ParameterSpec("lr", ParameterType.CATEGORICAL, FeasibleSpace(list=("0.1", "0.2"))),))
for name in ("random", "grid"):
    server, port = make_server(name)
    server.start()
    problem = Problem("e", space, Objective(ObjectiveType.MAXIMIZE, "acc"), {})
    assert len(algorithm_class(name)().suggest(problem, [], 2)) == 2
    server.stop(0).wait()
"""
    assert not _torch_loaded_after(code)


def test_the_policy_module_is_the_one_that_loads_torch() -> None:
    # A control for the test above: the same check does see torch when it is imported.
    assert _torch_loaded_after("import kubenas.enas_controller.policy")
