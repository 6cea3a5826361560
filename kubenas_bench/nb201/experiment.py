"""The Experiment every bench run sends: NB201's canonical nasConfig, maximize val_acc.

The same space a user writes in YAML (see README.md, "NAS-Bench-201 cell space"), built
as domain data and converted by the one proto codec, so the server sees what Katib's
controller would send for that YAML.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubenas.api.v1beta1 import api_pb2
from kubenas.proto_convert import objective_to_proto, search_space_to_proto, settings_to_proto
from kubenas.space import (
    FeasibleSpace,
    GraphConfig,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
    SearchSpace,
)
from kubenas.trials import Objective, ObjectiveType

__all__ = ["OBJECTIVE", "SEARCH_MODE", "bench_experiment", "nb201_search_space", "run_settings"]

OBJECTIVE = Objective(ObjectiveType.MAXIMIZE, "val_acc")
SEARCH_MODE = "nb201"
# The paper's skeleton: 5 cells per stage, 32x32x3 inputs, 10 classes (CIFAR-10's head; the
# tabular trial never builds the network, so one head serves all three datasets).
_NUM_LAYERS, _INPUT_SIZES, _OUTPUT_SIZES = 5, (32, 32, 3), (10,)


def _categorical(name: str, *values: str) -> ParameterSpec:
    return ParameterSpec(name=name, type=ParameterType.CATEGORICAL, feasible=FeasibleSpace(list=values))


def nb201_search_space() -> SearchSpace:
    """none, skip_connect, nor_conv 1x1/3x3, avg_pool 3x3: NB201's five primitives."""
    return SearchSpace(nas_config=NasConfig(
        graph_config=GraphConfig(num_layers=_NUM_LAYERS, input_sizes=_INPUT_SIZES, output_sizes=_OUTPUT_SIZES),
        operations=(
            Operation(operation_type="none"),
            Operation(operation_type="skip_connect"),
            Operation(operation_type="nor_conv", parameters=(_categorical("filter_size", "1", "3"),)),
            Operation(operation_type="avg_pool", parameters=(_categorical("pool_size", "3"),)),
        ),
    ))


def run_settings(seed: int, user: Mapping[str, str]) -> dict[str, str]:
    """The algorithm settings sent for one run: the user's, then the bench's own two."""
    return {**user, "search_mode": SEARCH_MODE, "random_state": str(seed)}


def bench_experiment(name: str, algorithm: str, settings: Mapping[str, str], parallel: int,
                     max_trials: int) -> api_pb2.Experiment:
    """The wire Experiment of one run (what GetSuggestions and ValidateAlgorithmSettings carry)."""
    msg = api_pb2.Experiment(name=name)
    spec = msg.spec
    search_space_to_proto(nb201_search_space(), spec)
    spec.objective.CopyFrom(objective_to_proto(OBJECTIVE))
    spec.algorithm.algorithm_name = algorithm
    spec.algorithm.algorithm_settings.extend(settings_to_proto(settings))
    spec.parallel_trial_count = parallel
    spec.max_trial_count = max_trials
    return msg
