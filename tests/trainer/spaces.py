"""Katib's example ENAS search spaces as kubenas.space objects, for tests and benchmarks."""

from __future__ import annotations

from kubenas.space import (
    ExpandedOp,
    FeasibleSpace,
    GraphConfig,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
)


def _cat(name: str, *values: str) -> ParameterSpec:
    return ParameterSpec(name, ParameterType.CATEGORICAL, FeasibleSpace(list=values))


# The operations of Katib's examples/v1beta1/nas/enas-gpu.yaml and enas-cpu.yaml.
KATIB_ENAS_OPERATIONS = (
    Operation("convolution", (_cat("filter_size", "3", "5", "7"), _cat("num_filter", "32", "48", "64", "96", "128"),
                              _cat("stride", "1", "2"))),
    Operation("separable_convolution", (_cat("filter_size", "3", "5", "7"),
                                        _cat("num_filter", "32", "48", "64", "96", "128"),
                                        _cat("stride", "1", "2"), _cat("depth_multiplier", "1", "2"))),
    Operation("depthwise_convolution", (_cat("filter_size", "3", "5", "7"), _cat("stride", "1", "2"),
                                        _cat("depth_multiplier", "1", "2"))),
    Operation("reduction", (_cat("reduction_type", "max_pooling", "avg_pooling"),
                            ParameterSpec("pool_size", ParameterType.INT, FeasibleSpace(min="2", max="3", step="1")))),
)

# The DARTS vocabulary as macro operations (dilated convolution, skip connection).
DARTS_MACRO_OPERATIONS = (
    Operation("dilated_convolution", (_cat("filter_size", "3", "5"), _cat("num_filter", "16", "32"))),
    Operation("skip_connection"),
    Operation("separable_convolution", (_cat("filter_size", "3"), _cat("num_filter", "16"))),
)


def katib_enas_gpu() -> NasConfig:
    return NasConfig(GraphConfig(8, (32, 32, 3), (10,)), KATIB_ENAS_OPERATIONS)


def katib_ops() -> list[ExpandedOp]:
    return katib_enas_gpu().expanded()


# An 8-layer architecture over Katib's enas-gpu space, as in Katib's docs (5 stride-2 layers).
KATIB_EXAMPLE_ARCHITECTURE = [[27], [29, 0], [22, 1, 0], [13, 0, 0, 0], [26, 1, 1, 0, 0], [30, 1, 0, 1, 0, 0],
                              [11, 0, 1, 1, 0, 1, 1], [9, 1, 0, 0, 1, 0, 0, 0]]
