"""The contract every registered suggestion algorithm must keep, as a reusable test base.

Use it by subclassing (pytest's pythonpath holds the repository root):

    from tests.suggestion.contract import AlgorithmContract


    class TestEnasContract(AlgorithmContract):
        @pytest.fixture
        def algorithm_name(self) -> str:
            return "enas"

A subclass names its algorithms in the `algorithms` class attribute (registry names) and,
in `rejected`, the contract spaces each must refuse ({algorithm: {space name: the field its
InvalidSettings or SpaceError must name}}). Tests are parametrised over (algorithm, space)
pairs at collection: each test runs only on the pairs it applies to (`applies_to`), so the
contract skips nothing by design and an algorithm module that fails to import fails
collection. `required_settings` ({algorithm: settings}) holds what an algorithm refuses to
run without (pbt's, as Katib's). Overridable fixtures: `base_settings` (settings every call gets, e.g. to keep a
controller small) and `seed_setting` (name of the seed setting). The spaces themselves are
`CONTRACT_SPACES`; a subclass may replace the `spaces` class attribute. A space may come with settings of its own
(`SPACE_SETTINGS`: the micro and NB201 spaces name their `search_mode`); each call gets
the space's settings, then `base_settings` (the `settings` fixture). NAS outputs are
checked by the format their assignment names identify (`NAS_FORMATS`), and an
`architecture`/`nn_config` pair by the `search_mode` its nn_config names (`NAS_MODES`):
in the space by that encoding's own decode, and independently of it.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from kubenas.genotype import Genotype
from kubenas.nb201 import Cell201
from kubenas.space import (
    Distribution,
    FeasibleSpace,
    GraphConfig,
    MacroArchitecture,
    NasConfig,
    Operation,
    ParameterSpec,
    ParameterType,
    SearchSpace,
    SpaceError,
    parse_number,
    primitive_names,
)
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import Algorithm, InvalidSettings, Problem, Suggestion
from suggestion.algorithms.encoding import nas_encoding
from suggestion.algorithms.encoding.micro import usable_in_cell
from suggestion.algorithms.registry import algorithm_class
from suggestion.state import DirectoryStateStore

__all__ = [
    "CONTRACT_SPACES",
    "EXTREME_VALUES",
    "NAS_FORMATS",
    "NAS_MODES",
    "OBJECTIVE",
    "SPACE_SETTINGS",
    "AlgorithmContract",
    "check_hpo_assignments",
    "check_macro_assignments",
    "check_micro_assignments",
    "check_nas_assignments",
    "check_nb201_assignments",
    "check_oneshot_assignments",
    "make_history",
    "nb201_nas",
    "param",
]

OBJECTIVE = Objective(ObjectiveType.MAXIMIZE, "accuracy", additional_metric_names=("loss",))

# Objective values no algorithm may be broken by: huge but finite, and not finite at all.
EXTREME_VALUES = (1e39, -1e300, 1e308, math.nan, math.inf, -math.inf)


def param(name: str, ptype: str, *, lo: str | None = None, hi: str | None = None,
          values: Sequence[str] = (), step: str | None = None, dist: str | None = None) -> ParameterSpec:
    """A ParameterSpec written the way Experiment YAML writes it."""
    return ParameterSpec(
        name,
        ParameterType(ptype),
        FeasibleSpace(min=lo, max=hi, list=tuple(values), step=step,
                      distribution=Distribution(dist) if dist else None),
    )


def _katib_like_nas(num_layers: int = 3) -> NasConfig:
    """A small ENAS-style space: 7 expanded ops (two parameterised kinds and a reduction)."""
    return NasConfig(
        GraphConfig(num_layers, (8, 8, 1), (10,)),
        (
            Operation("convolution", (param("filter_size", "categorical", values=("3", "5")),
                                      param("num_filter", "categorical", values=("8", "16")))),
            Operation("separable_convolution", (param("filter_size", "int", lo="3", hi="3"),
                                                param("num_filter", "discrete", values=("8",)))),
            Operation("reduction", (param("reduction_type", "categorical", values=("max_pooling", "avg_pooling")),
                                    param("pool_size", "int", lo="2", hi="2"))),
        ),
    )


def nb201_nas(num_layers: int = 5) -> NasConfig:
    """The canonical NAS-Bench-201 nasConfig (its primitives are NB201_PRIMITIVES, in order)."""
    return NasConfig(
        GraphConfig(num_layers, (32, 32, 3), (10,)),
        (
            Operation("none"),
            Operation("skip_connect"),
            Operation("nor_conv", (param("filter_size", "categorical", values=("1", "3")),)),
            Operation("avg_pool", (param("pool_size", "categorical", values=("3",)),)),
        ),
    )


CONTRACT_SPACES: dict[str, SearchSpace] = {
    # Finite: every parameter has a grid (48 points).
    "hpo_grid": SearchSpace(parameters=(
        param("lr", "double", lo="0.01", hi="0.1", step="0.03"),
        param("num_layers", "int", lo="1", hi="3"),
        param("batch_size", "discrete", values=("16", "32")),
        param("optimizer", "categorical", values=("sgd", "adam")),
    )),
    # Continuous and shaped: every distribution Katib names.
    "hpo_continuous": SearchSpace(parameters=(
        param("lr", "double", lo="0.0001", hi="0.1", dist="logUniform"),
        param("momentum", "double", lo="0.5", hi="0.99"),
        param("units", "int", lo="8", hi="256", dist="logUniform"),
        param("dropout", "double", lo="0.0", hi="0.5", dist="normal"),
        param("decay", "double", lo="0.00001", hi="0.01", dist="logNormal"),
        param("depth", "int", lo="2", hi="20", step="2", dist="normal"),
    )),
    "nas_macro": SearchSpace(nas_config=_katib_like_nas()),
    # ENAS cells over the same operations (the 2x2 poolings are not cell primitives).
    "nas_micro": SearchSpace(nas_config=_katib_like_nas()),
    "nas_nb201": SearchSpace(nas_config=nb201_nas()),
}

# Settings a space needs to mean what its name says.
SPACE_SETTINGS: dict[str, dict[str, str]] = {
    "nas_micro": {"search_mode": "micro", "num_nodes": "3"},
    "nas_nb201": {"search_mode": "nb201"},
}


def check_hpo_assignments(space: SearchSpace, assignments: Mapping[str, str]) -> None:
    """Every parameter assigned once, as text, inside its feasible space and on its step grid."""
    assert set(assignments) == {p.name for p in space.parameters}, assignments
    for p in space.parameters:
        text = assignments[p.name]
        assert isinstance(text, str), (p.name, text)
        assert p.contains(text), f"{p.name}={text!r} is outside {p.feasible}"
        if p.type is ParameterType.INT:
            assert str(int(text)) == text, f"int {p.name} written as {text!r}"
        if p.type in (ParameterType.INT, ParameterType.DOUBLE) and p.step is not None:
            value = parse_number(text)
            assert any(math.isclose(value, g, abs_tol=1e-9) for g in p.grid_values()), (p.name, text)


def check_macro_assignments(space: SearchSpace, assignments: Mapping[str, str]) -> None:
    """ENAS macro: strict-JSON architecture with numLayers rows of known op ids, and an
    nn_config whose embedding describes every op the architecture uses."""
    nas = space.nas_config
    assert nas is not None
    ops = nas.expanded()
    rows = json.loads(assignments["architecture"])
    arch = MacroArchitecture(tuple(tuple(r) for r in rows))
    assert len(arch.rows) == nas.graph_config.num_layers
    assert all(0 <= op < len(ops) for op in arch.op_ids), arch.op_ids
    config = json.loads(assignments["nn_config"])
    assert config["num_layers"] == nas.graph_config.num_layers
    assert config["input_sizes"] == list(nas.graph_config.input_sizes)
    assert config["output_sizes"] == list(nas.graph_config.output_sizes)
    embedding = config["embedding"]
    for op_id in set(arch.op_ids):
        assert str(op_id) in embedding, (op_id, sorted(embedding))
    for key, entry in embedding.items():
        assert entry == json.loads(json.dumps(ops[int(key)].to_json())), (key, entry)


def check_darts_assignments(space: SearchSpace, assignments: Mapping[str, str]) -> None:
    """DARTS: resolved settings object, primitives named from the nasConfig, numLayers."""
    nas = space.nas_config
    assert nas is not None
    assert isinstance(json.loads(assignments["algorithm-settings"]), dict)
    primitives = json.loads(assignments["search-space"])
    assert primitives and set(primitives) <= set(primitive_names(nas.operations)), primitives
    assert int(assignments["num-layers"]) == nas.graph_config.num_layers


def check_oneshot_assignments(space: SearchSpace, assignments: Mapping[str, str]) -> None:
    """One-shot search (enas-oneshot): resolved settings, and the whole space as an nn_config
    (macro: every expanded op in the embedding; micro: every cell primitive)."""
    nas = space.nas_config
    assert nas is not None
    settings = json.loads(assignments["algorithm-settings"])
    assert isinstance(settings, dict)
    config = json.loads(assignments["search-space"])
    assert config.get("search_mode", "macro") == settings["search_mode"], (config, settings)
    assert config["num_layers"] == nas.graph_config.num_layers
    assert config["input_sizes"] == list(nas.graph_config.input_sizes)
    assert config["output_sizes"] == list(nas.graph_config.output_sizes)
    if settings["search_mode"] == "micro":
        assert config["primitives"] == [p for p in primitive_names(nas.operations) if usable_in_cell(p)]
        assert config["num_nodes"] == settings["num_nodes"]
    else:
        ops = nas.expanded()
        assert config["embedding"] == {str(op.opt_id): json.loads(json.dumps(op.to_json())) for op in ops}


def _round_trips(space: SearchSpace, settings: Mapping[str, object], assignments: Mapping[str, str]) -> None:
    """In the space by the encoding's decode, and written exactly as the encoding writes it."""
    nas = space.nas_config
    assert nas is not None
    encoding = nas_encoding(nas, settings)
    vector = encoding.decode(assignments)
    assert encoding.encode(vector) == dict(assignments)


def check_micro_assignments(space: SearchSpace, assignments: Mapping[str, str]) -> None:
    """ENAS micro: a Genotype over the space's cell primitives, its nodes named in nn_config."""
    nas = space.nas_config
    assert nas is not None
    config = json.loads(assignments["nn_config"])
    allowed = [p for p in primitive_names(nas.operations) if usable_in_cell(p)]
    assert config["primitives"] == allowed
    assert config["num_layers"] == nas.graph_config.num_layers
    genotype = Genotype.from_json(assignments["architecture"])
    assert genotype.num_nodes == config["num_nodes"]
    assert genotype.primitives <= set(allowed), genotype.primitives
    for edges, concat in ((genotype.normal, genotype.normal_concat), (genotype.reduce, genotype.reduce_concat)):
        read = {i for _op, i in edges}
        assert list(concat) == [k for k in range(2, genotype.num_nodes + 2) if k not in read]
    _round_trips(space, {"search_mode": "micro", "num_nodes": config["num_nodes"]}, assignments)


def check_nb201_assignments(space: SearchSpace, assignments: Mapping[str, str]) -> None:
    """NAS-Bench-201: a 6-edge cell string over the space's primitives; sizes in nn_config."""
    nas = space.nas_config
    assert nas is not None
    config = json.loads(assignments["nn_config"])
    assert config["primitives"] == primitive_names(nas.operations)
    assert config["num_layers"] == nas.graph_config.num_layers
    assert config["input_sizes"] == list(nas.graph_config.input_sizes)
    assert config["output_sizes"] == list(nas.graph_config.output_sizes)
    cell = Cell201.from_string(assignments["architecture"])
    assert cell.to_string() == assignments["architecture"]
    assert set(cell.ops) <= set(config["primitives"]), cell.ops
    _round_trips(space, {"search_mode": "nb201"}, assignments)


# nn_config's search_mode (absent: Katib's macro format) -> its checker.
NAS_MODES: dict[str, Callable[[SearchSpace, Mapping[str, str]], None]] = {
    "macro": check_macro_assignments,
    "micro": check_micro_assignments,
    "nb201": check_nb201_assignments,
}


def check_nas_assignments(space: SearchSpace, assignments: Mapping[str, str]) -> None:
    """An architecture/nn_config pair, checked by the format its nn_config names."""
    mode = json.loads(assignments["nn_config"]).get("search_mode", "macro")
    assert mode in NAS_MODES, mode
    NAS_MODES[mode](space, assignments)


# Assignment names -> the checker of that NAS output format (formats, not algorithm names).
NAS_FORMATS: dict[frozenset[str], Callable[[SearchSpace, Mapping[str, str]], None]] = {
    frozenset({"architecture", "nn_config"}): check_nas_assignments,
    frozenset({"algorithm-settings", "search-space", "num-layers"}): check_darts_assignments,
    frozenset({"algorithm-settings", "search-space"}): check_oneshot_assignments,
}


def make_history(suggestions: Sequence[Suggestion], conditions: Sequence[TrialCondition],
                 metric: Callable[[int], float] | None = None, prefix: str = "t") -> list[TrialRecord]:
    """Trials made from earlier suggestions; `metric(i)` gives succeeded trial i its value."""
    out = []
    for i, (s, cond) in enumerate(zip(suggestions, conditions)):
        metrics = {}
        if cond is TrialCondition.SUCCEEDED and metric is not None:
            metrics = {"accuracy": metric(i), "loss": 1.0 - metric(i)}
        out.append(TrialRecord(f"{prefix}-{i}", dict(s.assignments), cond, metrics))
    return out


def applies_to(pairs: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Which (algorithm, space) pairs a contract test runs on: "all", "supported" or "supported_nas"."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        test.contract_pairs = pairs  # type: ignore[attr-defined]
        return test

    return mark


class AlgorithmContract:
    """Shared tests; not collected itself (no `Test` prefix)."""

    algorithms: ClassVar[Sequence[str]] = ()
    returns_fewer = False
    rejected: ClassVar[dict[str, dict[str, str]]] = {}
    spaces: ClassVar[dict[str, SearchSpace]] = CONTRACT_SPACES
    space_settings: ClassVar[dict[str, dict[str, str]]] = SPACE_SETTINGS
    # Settings an algorithm needs in a space ({algorithm: {space name: settings}}), e.g. the
    # parameter hyperband treats as the budget.
    algorithm_settings: ClassVar[dict[str, dict[str, dict[str, str]]]] = {}
    required_settings: ClassVar[dict[str, dict[str, str]]] = {}

    @classmethod
    def is_supported(cls, algorithm: str, space_name: str) -> bool:
        algorithm_cls = algorithm_class(algorithm)
        kind_ok = algorithm_cls.supports_nas if cls.spaces[space_name].is_nas else algorithm_cls.supports_hpo
        return kind_ok and space_name not in cls.rejected.get(algorithm, {})

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "space_name" not in metafunc.fixturenames:
            return
        assert self.algorithms, f"{type(self).__name__} names no algorithms"
        which = getattr(metafunc.function, "contract_pairs", "supported")
        pairs = [(a, s) for a in self.algorithms for s in sorted(self.spaces)
                 if which == "all" or (self.is_supported(a, s)
                                       and (which == "supported" or self.spaces[s].is_nas))]
        assert pairs, f"{metafunc.function.__name__} applies to no (algorithm, space) pair"
        metafunc.parametrize(("algorithm_name", "space_name"), pairs, ids=[f"{a}-{s}" for a, s in pairs])

    # ---- overridable fixtures -------------------------------------------------------
    @pytest.fixture
    def base_settings(self) -> dict[str, str]:
        return {}

    @pytest.fixture
    def seed_setting(self) -> str:
        return "random_state"

    # ---- derived fixtures -----------------------------------------------------------
    @pytest.fixture
    def algorithm_cls(self, algorithm_name: str) -> type[Algorithm]:
        self.returns_fewer = algorithm_class(algorithm_name).may_return_fewer
        return algorithm_class(algorithm_name)

    @pytest.fixture
    def space(self, space_name: str) -> SearchSpace:
        return self.spaces[space_name]

    @pytest.fixture
    def settings(self, algorithm_name: str, space_name: str, base_settings: dict[str, str]) -> dict[str, str]:
        own = self.algorithm_settings.get(algorithm_name, {}).get(space_name, {})
        return {**self.space_settings.get(space_name, {}), **self.required_settings.get(algorithm_name, {}), **own,
                **base_settings}

    def problem(self, space: SearchSpace, settings: Mapping[str, str]) -> Problem:
        return Problem("contract-exp", space, OBJECTIVE, dict(settings))

    def fresh(self, algorithm_cls: type[Algorithm]) -> Algorithm:
        return algorithm_cls()

    def check(self, space: SearchSpace, suggestions: Sequence[Suggestion], n: int,
              settings: Mapping[str, str] | None = None) -> None:
        """`n` suggestions in `space` (an algorithm that `may_return_fewer` gives 1 to `n` while
        it has work to hand out); architectures in the `search_mode` of `settings`."""
        assert isinstance(suggestions, list), suggestions
        if self.returns_fewer:
            assert 1 <= len(suggestions) <= n or n == 0 == len(suggestions), (n, suggestions)
        else:
            assert len(suggestions) == n, (n, suggestions)
        expected_mode = (settings or {}).get("search_mode", "macro")
        for s in suggestions:
            assert isinstance(s, Suggestion)
            assert all(isinstance(v, str) for v in s.assignments.values()), s.assignments
            if not space.is_nas:
                check_hpo_assignments(space, s.assignments)
                continue
            checker = NAS_FORMATS.get(frozenset(s.assignments))
            assert checker is not None, f"unknown NAS output format {sorted(s.assignments)}"
            checker(space, s.assignments)
            if "nn_config" in s.assignments:
                assert json.loads(s.assignments["nn_config"]).get("search_mode", "macro") == expected_mode

    # ---- the contract ---------------------------------------------------------------
    @applies_to("all")
    def test_validates_exactly_the_supported_spaces(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                                    algorithm_name: str, space_name: str,
                                                    settings: dict[str, str]) -> None:
        problem = self.problem(space, settings)
        if self.is_supported(algorithm_name, space_name):
            self.fresh(algorithm_cls).validate(problem)
            return
        with pytest.raises((InvalidSettings, SpaceError)) as info:
            self.fresh(algorithm_cls).validate(problem)
        err = info.value
        named = err.setting if isinstance(err, InvalidSettings) else err.field
        expected = self.rejected.get(algorithm_name, {}).get(space_name)
        if expected:
            assert named == expected, str(err)
        assert str(err).startswith(f"{named}: ")

    @pytest.mark.parametrize("n", [1, 3])
    def test_empty_history_gives_n_in_space(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                            space_name: str,
                                            settings: dict[str, str], n: int) -> None:
        self.check(space, self.fresh(algorithm_cls).suggest(self.problem(space, settings), [], n), n, settings)

    def test_zero_requested_gives_none(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                       space_name: str, settings: dict[str, str]) -> None:
        assert self.fresh(algorithm_cls).suggest(self.problem(space, settings), [], 0) == []

    def test_only_failed_or_unavailable_history(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                                space_name: str,
                                                settings: dict[str, str]) -> None:
        algo = self.fresh(algorithm_cls)
        problem = self.problem(space, settings)
        first = algo.suggest(problem, [], 4)
        history = make_history(first, [TrialCondition.FAILED, TrialCondition.METRICS_UNAVAILABLE,
                                       TrialCondition.FAILED, TrialCondition.KILLED])
        self.check(space, algo.suggest(problem, history, 2), 2, settings)

    def test_with_succeeded_history(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                    space_name: str, settings: dict[str, str]) -> None:
        algo = self.fresh(algorithm_cls)
        problem = self.problem(space, settings)
        history: list[TrialRecord] = []
        conditions = [TrialCondition.SUCCEEDED, TrialCondition.RUNNING, TrialCondition.SUCCEEDED,
                      TrialCondition.FAILED, TrialCondition.SUCCEEDED]
        for round_ in range(3):
            new = algo.suggest(problem, history, len(conditions))
            self.check(space, new, len(conditions), settings)
            history += make_history(new, conditions, metric=lambda i: 0.1 * (i % 7), prefix=f"r{round_}")

    def test_does_not_mutate_history(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                     space_name: str, settings: dict[str, str]) -> None:
        algo = self.fresh(algorithm_cls)
        problem = self.problem(space, settings)
        history = make_history(algo.suggest(problem, [], 3),
                               [TrialCondition.SUCCEEDED, TrialCondition.FAILED, TrialCondition.SUCCEEDED],
                               metric=lambda i: 0.5 + i / 10)
        snapshot = copy.deepcopy(history)
        algo.suggest(problem, history, 2)
        assert history == snapshot

    def test_deterministic_under_seed(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                      space_name: str, settings: dict[str, str],
                                      seed_setting: str) -> None:
        problem = self.problem(space, {**settings, seed_setting: "7"})
        history = make_history(self.fresh(algorithm_cls).suggest(problem, [], 3),
                               [TrialCondition.SUCCEEDED, TrialCondition.SUCCEEDED, TrialCondition.FAILED],
                               metric=lambda i: 0.3 + i / 10)

        def run() -> list[dict[str, str]]:
            return [dict(s.assignments) for s in self.fresh(algorithm_cls).suggest(problem, history, 3)]

        assert run() == run()

    def test_rejects_unknown_setting(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                     space_name: str, settings: dict[str, str]) -> None:
        problem = self.problem(space, {**settings, "no_such_setting": "1"})
        with pytest.raises(InvalidSettings) as info:
            self.fresh(algorithm_cls).validate(problem)
        assert info.value.setting == "no_such_setting"
        assert "no_such_setting" in str(info.value) and "'1'" in str(info.value)

    @pytest.mark.parametrize("bad", ["abc", "-1", "1.5", ""])
    def test_rejects_bad_seed(self, algorithm_cls: type[Algorithm], space: SearchSpace, space_name: str,
                              settings: dict[str, str], seed_setting: str,
                              bad: str) -> None:
        problem = self.problem(space, {**settings, seed_setting: bad})
        with pytest.raises(InvalidSettings) as info:
            self.fresh(algorithm_cls).validate(problem)
        assert info.value.setting == seed_setting
        assert info.value.value == bad and info.value.allowed, str(info.value)

    @applies_to("supported_nas")
    def test_rejects_unknown_search_mode(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                         space_name: str, settings: dict[str, str]) -> None:
        problem = self.problem(space, {**settings, "search_mode": "cellular"})
        with pytest.raises(InvalidSettings) as info:
            self.fresh(algorithm_cls).validate(problem)
        assert info.value.setting == "search_mode" and info.value.value == "cellular", str(info.value)

    @pytest.mark.parametrize("restart", [False, True], ids=["one-process", "restart-each-call"])
    def test_extreme_objective_values_poison_nothing(self, algorithm_cls: type[Algorithm], space: SearchSpace,
                                                     space_name: str, settings: dict[str, str],
                                                     tmp_path: Path, restart: bool) -> None:
        # Before the reward rule one Succeeded trial at 1e39 turned ENAS's float32 controller
        # into NaN and 1e160 broke bayesian's GP: every later call failed, --resume too.
        problem = self.problem(space, settings)
        algo = algorithm_cls(DirectoryStateStore(tmp_path))
        history: list[TrialRecord] = []
        for round_ in range(4):  # past the random start-up phase of tpe and bayesian
            if restart:
                algo = algorithm_cls(DirectoryStateStore(tmp_path))
            new = algo.suggest(problem, history, len(EXTREME_VALUES))
            self.check(space, new, len(EXTREME_VALUES), settings)
            history += make_history(new, [TrialCondition.SUCCEEDED] * len(EXTREME_VALUES),
                                    metric=lambda i: EXTREME_VALUES[i], prefix=f"x{round_}")
        if restart:
            algo = algorithm_cls(DirectoryStateStore(tmp_path))
        self.check(space, algo.suggest(problem, history, 3), 3, settings)
