"""Search spaces: HPO parameters, NAS `nasConfig`, and what is derived from them.

One module per concept; this package's `__all__` is the public surface that algorithms,
trainers and user programs import (`from kubenas.space import SearchSpace`):

- `parameters`: a parameter, its feasible space, its checks and grid values;
- `nas`: graphConfig, operations and nasConfig, with their checks;
- `search_space`: the two together, as an algorithm receives them;
- `operation_expansion`: Katib's numbering of concrete operations (ENAS op ids);
- `cell_primitives`: DARTS-style primitive names;
- `macro_architecture`: ENAS's macro architecture codec and `nn_config`;
- `number_text`, `lenient_json`: numbers and JSON as Katib writes them;
- `errors`: `SpaceError`.

The pydantic classes are at once the Experiment YAML's models (camelCase aliases) and the
domain objects; everything here is plain data shared by the suggestion and trainer sides.
"""

from __future__ import annotations

from kubenas.space.cell_primitives import primitive_names
from kubenas.space.errors import SpaceError
from kubenas.space.lenient_json import loads_lenient
from kubenas.space.macro_architecture import MacroArchitecture, nn_config
from kubenas.space.nas import (
    MAX_EXPANDED_OPERATIONS,
    MAX_NUM_LAYERS,
    GraphConfig,
    NasConfig,
    Operation,
)
from kubenas.space.number_text import format_value, parse_number
from kubenas.space.operation_expansion import ExpandedOp, expand_operations
from kubenas.space.parameters import (
    MAX_DOUBLE_GRID,
    Distribution,
    FeasibleSpace,
    ParameterSpec,
    ParameterType,
)
from kubenas.space.search_space import SearchSpace

__all__ = [
    "MAX_DOUBLE_GRID",
    "MAX_EXPANDED_OPERATIONS",
    "MAX_NUM_LAYERS",
    "Distribution",
    "ExpandedOp",
    "FeasibleSpace",
    "GraphConfig",
    "MacroArchitecture",
    "NasConfig",
    "Operation",
    "ParameterSpec",
    "ParameterType",
    "SearchSpace",
    "SpaceError",
    "expand_operations",
    "format_value",
    "loads_lenient",
    "nn_config",
    "parse_number",
    "primitive_names",
]
