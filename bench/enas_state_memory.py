"""Peak RSS of one ENAS suggestion server (in-memory state) after one call each for N experiments.

    PYTHONPATH=. python bench/enas_state_memory.py N [controller_hidden_size]

Before the memory store was bounded it kept every experiment ever seen; now it keeps the
64 most recently used (and at most 256 MB), so the peak stays flat as N grows.
"""

from __future__ import annotations

import resource
import sys
import time

import grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.proto_convert import objective_to_proto, search_space_to_proto
from kubenas.space import GraphConfig, NasConfig, Operation, SearchSpace
from kubenas.trials import Objective, ObjectiveType
from suggestion.service import make_server
from tests.suggestion.contract import param


def katib_like_space() -> SearchSpace:
    sizes = ("32", "48", "64", "128")
    return SearchSpace(nas_config=NasConfig(GraphConfig(12, (32, 32, 3), (10,)), (
        Operation("convolution", (param("filter_size", "categorical", values=("3", "5", "7")),
                                  param("num_filter", "categorical", values=sizes))),
        Operation("separable_convolution", (param("filter_size", "categorical", values=("3", "5", "7")),
                                            param("num_filter", "categorical", values=sizes))),
        Operation("reduction", (param("reduction_type", "categorical", values=("max_pooling", "avg_pooling")),
                                param("pool_size", "int", lo="2", hi="2"))),
    )))


def main(experiments: int, hidden: str) -> None:
    server, port = make_server("enas")
    server.start()
    stub = api_pb2_grpc.SuggestionStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    spec = search_space_to_proto(katib_like_space())
    spec.objective.CopyFrom(objective_to_proto(Objective(ObjectiveType.MAXIMIZE, "accuracy")))
    spec.algorithm.algorithm_name = "enas"
    spec.algorithm.algorithm_settings.add(name="controller_hidden_size", value=hidden)
    started = time.time()
    for i in range(experiments):
        stub.GetSuggestions(api_pb2.GetSuggestionsRequest(
            experiment=api_pb2.Experiment(name=f"exp-{i}", spec=spec), current_request_number=1), timeout=60)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{experiments} experiments, hidden {hidden}: peak RSS {peak_mb:.0f} MB, {time.time() - started:.1f} s")
    server.stop(None)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "64")
