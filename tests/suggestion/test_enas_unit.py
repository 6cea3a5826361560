"""ENAS algorithm without the network: settings, space checks, formats, reward rule, state."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from kubenas.genotype import Genotype
from kubenas.space import (
    GraphConfig,
    MacroArchitecture,
    NasConfig,
    Operation,
    SearchSpace,
)
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings
from suggestion.algorithms.enas import Enas
from suggestion.algorithms.enas.learning import harvest
from suggestion.algorithms.enas.macro import MacroMode
from suggestion.algorithms.enas.settings import EnasSettings, parse_enas_settings
from suggestion.algorithms.registry import algorithm_class
from suggestion.state import DirectoryStateStore, MemoryStateStore, state_file_name
from tests.suggestion.test_enas_spaces import (
    cat,
    katib_space,
    mixed_types_space,
    problem,
    rng,
    unit_scenario_space,
)

FAST = {"controller_train_steps": "3", "controller_hidden_size": "16"}
C = TrialCondition


def records(suggestions, conditions, values=None, prefix="t"):  # type: ignore[no-untyped-def]
    out = []
    for i, (s, cond) in enumerate(zip(suggestions, conditions)):
        metrics = {} if values is None or values[i] is None else {"Validation-Accuracy": values[i]}
        out.append(TrialRecord(f"{prefix}{i}", dict(s.assignments), cond, metrics))
    return out


# ---- settings ---------------------------------------------------------------------------------

def test_registered_under_enas() -> None:
    assert algorithm_class("enas") is Enas
    assert Enas.supports_nas and not Enas.supports_hpo


def test_defaults_are_katibs() -> None:
    s = parse_enas_settings({}, EnasSettings)
    assert s == EnasSettings()
    assert (s.controller_hidden_size, s.controller_temperature, s.controller_tanh_const) == (64, 5.0, 2.25)
    assert (s.controller_entropy_weight, s.controller_baseline_decay, s.controller_learning_rate) == (1e-5, 0.999, 5e-5)
    assert (s.controller_skip_target, s.controller_skip_weight) == (0.4, 0.8)
    assert (s.controller_train_steps, s.controller_log_every_steps) == (50, 10)
    assert (s.random_state, s.search_mode) == (None, "macro")


@pytest.mark.parametrize(("name", "bad", "allowed"), [
    ("controller_hidden_size", "0", "[1, 1024]"),
        ("controller_hidden_size", "100000", "[1, 1024]"),
    ("controller_hidden_size", "8.5", "[1, 1024]"),
    ("controller_temperature", "0", "> 0"),
    ("controller_temperature", "nan", "> 0"),
    ("controller_tanh_const", "-1", "> 0"),
    ("controller_entropy_weight", "0", "> 0"),
    ("controller_baseline_decay", "0", "(0, 1]"),
    ("controller_baseline_decay", "1.5", "(0, 1]"),
    ("controller_learning_rate", "2", "(0, 1]"),
    ("controller_skip_target", "1", "(0, 1)"),
    ("controller_skip_target", "0", "(0, 1)"),
    ("controller_skip_weight", "-0.1", "> 0"),
    ("controller_train_steps", "0", "[1, 1000]"),
        ("controller_train_steps", "10000000", "[1, 1000]"),
    ("controller_log_every_steps", "ten", ">= 1"),
    ("random_state", "-3", "[0, 2^63)"),
    ("search_mode", "meso", "macro, micro"),
    ("controller_baseline_decay", "None", "(0, 1]"),
])
def test_each_bad_setting_is_named_with_value_and_range(name: str, bad: str, allowed: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        Enas().validate(problem(unit_scenario_space(), {name: bad}))
    assert info.value.setting == name and info.value.value == bad
    assert allowed in info.value.allowed
    assert str(info.value).startswith(f"{name}: invalid value {bad!r}")


def test_none_turns_off_katibs_optional_terms() -> None:
    off = {k: "None" for k in ("controller_temperature", "controller_tanh_const",
                               "controller_entropy_weight", "controller_skip_weight")}
    s = parse_enas_settings(off, EnasSettings)
    assert s.controller_temperature is None and s.controller_skip_weight is None
    got = Enas().suggest(problem(unit_scenario_space(), {**off, **FAST, "random_state": "1"}), [], 2)
    assert len(got) == 2


def test_num_nodes_belongs_to_micro_mode() -> None:
    with pytest.raises(InvalidSettings, match="num_nodes.*micro"):
        Enas().validate(problem(unit_scenario_space(), {"num_nodes": "4"}))
    Enas().validate(problem(unit_scenario_space(), {"num_nodes": "4", "search_mode": "micro"}))
    with pytest.raises(InvalidSettings) as info:
        Enas().validate(problem(unit_scenario_space(), {"num_nodes": "0", "search_mode": "micro"}))
    assert info.value.setting == "num_nodes"


# ---- nasConfig checks ------------------------------------------------------------------------

def _nas(num_layers: int = 2, inputs: tuple[int, ...] = (8, 8, 1), outputs: tuple[int, ...] = (10,),
         ops: tuple[Operation, ...] = (Operation("skip_connection"),)) -> SearchSpace:
    return SearchSpace(nas_config=NasConfig(GraphConfig(num_layers, inputs, outputs), ops))


@pytest.mark.parametrize(("space", "field"), [
    (SearchSpace(parameters=(rng("lr", "double", "0.1", "0.2"),)), "nasConfig"),
    (_nas(num_layers=0), "nasConfig.graphConfig.numLayers"),
    (_nas(inputs=()), "nasConfig.graphConfig.inputSizes"),
    (_nas(outputs=()), "nasConfig.graphConfig.outputSizes"),
    (_nas(ops=()), "nasConfig.operations"),
    (_nas(ops=(Operation("convolution"),)), "nasConfig.operations[0].parameters"),
    (_nas(ops=(Operation("skip_connection"), Operation("reduction", (cat("reduction_type", "max_pooling"),)))),
     "nasConfig.operations[1].parameters"),
    (_nas(ops=(Operation("convolution", (cat("filter_size"), cat("num_filter", "8"))),)),
     "nasConfig.operations[0].parameters[0].feasibleSpace.list"),
    (_nas(ops=(Operation("dropout", (rng("rate", "double", "0.1", "0.5"),)),)),
     "nasConfig.operations[0].parameters[0].feasibleSpace.step"),
    (_nas(ops=(Operation("dropout", (rng("rate", "double", "0.1", "0.5", "-0.1"),)),)),
     "nasConfig.operations[0].parameters[0].feasibleSpace.step"),
    (_nas(ops=(Operation("wide", (rng("units", "int", "1", "1000000"),)),)), "nasConfig.operations[0]"),
])
def test_bad_nas_config_names_the_field(space: SearchSpace, field: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        Enas().validate(problem(space))
    assert info.value.setting == field, str(info.value)
    assert info.value.allowed


def test_parameterless_operations_are_valid() -> None:
    space = _nas(ops=(Operation("skip_connection"), Operation("identity")))
    got = Enas().suggest(problem(space, FAST), [], 3)
    for s in got:
        config = json.loads(s.assignments["nn_config"])
        for entry in config["embedding"].values():
            assert entry["opt_params"] == {} and entry["opt_type"] in ("skip_connection", "identity")


# ---- output formats ---------------------------------------------------------------------------

def check_macro(space: SearchSpace, assignments: dict[str, str]) -> MacroArchitecture:
    nas = space.nas_config
    assert nas is not None
    assert set(assignments) == {"architecture", "nn_config"}
    arch = MacroArchitecture(tuple(tuple(r) for r in json.loads(assignments["architecture"])))
    ops = nas.expanded()
    assert len(arch.rows) == nas.graph_config.num_layers
    assert all(0 <= i < len(ops) for i in arch.op_ids)
    config = json.loads(assignments["nn_config"])
    assert config["num_layers"] == nas.graph_config.num_layers
    assert config["input_sizes"] == list(nas.graph_config.input_sizes)
    assert config["output_sizes"] == list(nas.graph_config.output_sizes)
    assert sorted(config["embedding"], key=int) == [str(i) for i in sorted(set(arch.op_ids))]
    for key, entry in config["embedding"].items():
        assert entry == ops[int(key)].to_json()
    return arch


def test_macro_assignments_are_strict_json_of_the_shared_format() -> None:
    space = mixed_types_space(num_layers=4)
    got = Enas().suggest(problem(space, {**FAST, "random_state": "3"}), [], 20)
    seen_ops: set[int] = set()
    for s in got:
        arch = check_macro(space, dict(s.assignments))
        seen_ops.update(arch.op_ids)
        for entry in json.loads(s.assignments["nn_config"])["embedding"].values():
            for value in entry["opt_params"].values():
                assert isinstance(value, (int, float, str))
                if entry["opt_type"] == "dropout_convolution" and isinstance(value, float):
                    assert value in (0.1, 0.2, 0.3)
    assert len(seen_ops) >= 6  # an untrained controller explores the whole op list


def test_micro_assignments_are_a_genotype_the_trainer_can_build() -> None:
    space = katib_space("enas-gpu")
    settings = {**FAST, "search_mode": "micro", "num_nodes": "4", "random_state": "5"}
    got = Enas().suggest(problem(space, settings), [], 6)
    from kubenas.space import primitive_names

    named = primitive_names(space.nas_config.operations)  # type: ignore[union-attr]
    # Cells keep their size with (k-1)//2 padding: the 2x2 poolings of Katib's space are left out.
    allowed = {p for p in named if not p.endswith("_2x2")}
    assert allowed == set(named) - {"max_pooling_2x2", "avg_pooling_2x2"} and len(allowed) == 11
    for s in got:
        assert set(s.assignments) == {"architecture", "nn_config"}
        genotype = Genotype.from_json(s.assignments["architecture"])
        assert isinstance(json.loads(s.assignments["architecture"]), dict)
        assert genotype.num_nodes == 4 and genotype.primitives <= allowed
        for edges, concat in ((genotype.normal, genotype.normal_concat), (genotype.reduce, genotype.reduce_concat)):
            used = {i for _, i in edges}
            assert list(concat) == [k for k in range(2, 6) if k not in used]  # loose ends
        config = json.loads(s.assignments["nn_config"])
        assert config["search_mode"] == "micro" and config["num_nodes"] == 4 and config["num_layers"] == 8
        assert config["input_sizes"] == [32, 32, 3] and config["output_sizes"] == [10]
        assert set(config["primitives"]) == allowed


def test_micro_never_picks_the_zero_op_or_even_kernels() -> None:
    space = _nas(ops=(Operation("none"), Operation("skip_connection"),
                      Operation("max_pooling", (cat("filter_size", "2", "3"),))))
    got = Enas().suggest(problem(space, {**FAST, "search_mode": "micro", "num_nodes": "3"}), [], 10)
    seen: set[str] = set()
    for s in got:
        seen |= Genotype.from_json(s.assignments["architecture"]).primitives
    assert seen == {"skip_connection", "max_pooling_3x3"}
    only_even = _nas(ops=(Operation("none"), Operation("avg_pooling", (cat("filter_size", "2"),))))
    with pytest.raises(InvalidSettings) as info:
        Enas().validate(problem(only_even, {"search_mode": "micro"}))
    assert info.value.setting == "nasConfig.operations" and "odd kernel" in info.value.allowed


# ---- reward rule --------------------------------------------------------------------------------

def _macro_mode(space: SearchSpace) -> MacroMode:
    return MacroMode(space.nas_config, EnasSettings())  # type: ignore[arg-type]


ARCH = {"architecture": "[[0], [1, 1], [2, 0, 1], [3, 1, 1, 0]]", "nn_config": "{'num_layers': 4}"}


def _trial(name: str, cond: TrialCondition, value: float | None = None, arch: dict[str, str] = ARCH) -> TrialRecord:
    return TrialRecord(name, arch, cond, {} if value is None else {"Validation-Accuracy": value})


def test_reward_rule() -> None:
    mode = _macro_mode(unit_scenario_space())
    history = [
        _trial("ok", C.SUCCEEDED, 0.9),
        _trial("running", C.RUNNING),
        _trial("failed", C.FAILED),
        _trial("killed", C.KILLED, 0.1),
        _trial("stopped", C.EARLY_STOPPED, 0.4),
        _trial("no-metric", C.SUCCEEDED),
        _trial("nan", C.SUCCEEDED, math.nan),
        _trial("unavailable", C.METRICS_UNAVAILABLE),
    ]
    got = harvest(history, ACC_MAX, [], None, mode.decode)
    rewards = {e.trial: e.reward for e in got.experiences}
    assert rewards == {"ok": 0.9, "failed": 0.4, "stopped": 0.4, "no-metric": 0.4, "nan": 0.4, "unavailable": 0.4}
    assert set(got.seen) == set(rewards) | {"killed"} and got.worst_reward == 0.4
    assert got.experiences[0].decisions == [[0, 0, 0, 0, 0], [1, 1, 0, 0, 0], [2, 0, 1, 0, 0], [3, 1, 1, 0, 0]]
    # Already seen trials are never learned from twice; the running one is looked at later.
    again = harvest(history, ACC_MAX, got.seen, got.worst_reward, mode.decode)
    assert again.experiences == [] and again.seen == []


def test_minimize_negates_and_failures_wait_for_a_success() -> None:
    mode = _macro_mode(unit_scenario_space())
    loss = Objective(ObjectiveType.MINIMIZE, "Validation-Accuracy")
    early = harvest([_trial("f", C.FAILED), _trial("u", C.METRICS_UNAVAILABLE)], loss, [], None, mode.decode)
    assert early.experiences == [] and early.seen == [] and early.worst_reward is None
    later = harvest([_trial("f", C.FAILED), _trial("s1", C.SUCCEEDED, 0.2), _trial("s2", C.SUCCEEDED, 0.5)],
                    loss, [], None, mode.decode)
    assert [(e.trial, e.reward) for e in later.experiences] == [("f", -0.5), ("s1", -0.2), ("s2", -0.5)]


def test_architectures_that_do_not_fit_are_logged_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    mode = _macro_mode(unit_scenario_space())
    bad = [
        _trial("rows", C.SUCCEEDED, 0.5, {"architecture": "[[0], [1, 1]]"}),
        _trial("op", C.SUCCEEDED, 0.5, {"architecture": "[[9], [1, 1], [2, 0, 1], [3, 1, 1, 0]]"}),
        _trial("json", C.SUCCEEDED, 0.5, {"architecture": "[[0], [1, 1"}),
        _trial("none", C.SUCCEEDED, 0.5, {"lr": "0.1"}),
    ]
    with caplog.at_level(logging.WARNING):
        got = harvest(bad, ACC_MAX, [], None, mode.decode)
    assert got.experiences == [] and sorted(got.seen) == ["json", "none", "op", "rows"]
    assert sum("architecture ignored" in r.message for r in caplog.records) == 4


ACC_MAX = Objective(ObjectiveType.MAXIMIZE, "Validation-Accuracy")


# ---- calls, state, determinism --------------------------------------------------------------------

def test_valid_samples_before_any_success_and_katib_style_history() -> None:
    algo = Enas()
    p = problem(unit_scenario_space(), {**FAST, "random_state": "11"})
    failed = [_trial("f1", C.FAILED), _trial("f2", C.METRICS_UNAVAILABLE), _trial("r", C.RUNNING)]
    for s in algo.suggest(p, failed, 3):
        check_macro(unit_scenario_space(), dict(s.assignments))
    # Katib's unit scenario history (single-quoted nn_config) is learned from.
    katib = [_trial("first-trial", C.SUCCEEDED, 0.88),
             _trial("second-trial", C.SUCCEEDED, 0.84,
                    {"architecture": "[[1], [0, 1], [2, 1, 1], [2, 1, 1, 0]]", "nn_config": "{'num_layers': 4}"})]
    assert len(algo.suggest(p, failed + katib, 2)) == 2
    session = algo.saved_session(p)
    assert session is not None
    assert session.learned == 4 and set(session.seen) == {"f1", "f2", "first-trial", "second-trial"}
    assert session.worst_reward == 0.84 and session.calls == 2


def _run_calls(algo: Enas, settings: dict[str, str], rounds: int, name: str = "enas-exp",
               space: SearchSpace | None = None) -> list[list[dict[str, str]]]:
    """Three-trial rounds with a deterministic reward; returns every round's assignments."""
    space = space or unit_scenario_space()
    p = problem(space, settings, name=name)
    history: list[TrialRecord] = []
    out = []
    for r in range(rounds):
        got = algo.suggest(p, history, 3)
        out.append([dict(s.assignments) for s in got])
        values = [0.1 * (1 + len(s.assignments["architecture"]) % 7) for s in got]
        history += records(got, [C.SUCCEEDED, C.FAILED, C.SUCCEEDED], values, prefix=f"{name}-{r}-")
    return out


def test_deterministic_with_a_seed_and_different_without() -> None:
    seeded = {**FAST, "random_state": "42"}
    assert _run_calls(Enas(), seeded, 3) == _run_calls(Enas(), seeded, 3)
    assert _run_calls(Enas(), seeded, 1) != _run_calls(Enas(), {**FAST, "random_state": "43"}, 1)
    assert _run_calls(Enas(), FAST, 1) != _run_calls(Enas(), FAST, 1)


def test_restart_from_the_state_dir_continues_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = {**FAST, "random_state": "7"}
    uninterrupted = _run_calls(Enas(DirectoryStateStore(tmp_path / "a")), settings, 4)
    # Same requests, but a new process (instance) for every call, sharing only the directory.
    space = unit_scenario_space()
    p = problem(space, settings)
    history: list[TrialRecord] = []
    restarted = []
    for r in range(4):
        got = Enas(DirectoryStateStore(tmp_path / "b")).suggest(p, history, 3)
        restarted.append([dict(s.assignments) for s in got])
        values = [0.1 * (1 + len(s.assignments["architecture"]) % 7) for s in got]
        history += records(got, [C.SUCCEEDED, C.FAILED, C.SUCCEEDED], values, prefix=f"enas-exp-{r}-")
    assert restarted == uninterrupted
    assert [f.name for f in (tmp_path / "b").iterdir()] == [state_file_name("enas-enas-exp")]


def test_changed_space_or_settings_start_a_fresh_controller() -> None:
    store = MemoryStateStore()
    _run_calls(Enas(store), {**FAST, "random_state": "1"}, 2)
    other = _run_calls(Enas(store), {**FAST, "random_state": "1"}, 1, space=unit_scenario_space(num_layers=2))
    assert other == _run_calls(Enas(), {**FAST, "random_state": "1"}, 1, space=unit_scenario_space(num_layers=2))


def test_one_instance_serves_several_experiments_at_once() -> None:
    names = [f"exp-{i}" for i in range(4)]
    alone = {n: _run_calls(Enas(), {**FAST, "random_state": str(i)}, 3, name=n) for i, n in enumerate(names)}
    shared = Enas()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {n: pool.submit(_run_calls, shared, {**FAST, "random_state": str(i)}, 3, n)
                   for i, n in enumerate(names)}
        together = {n: f.result(timeout=120) for n, f in futures.items()}
    assert together == alone


def test_one_layer_policy_stays_finite() -> None:
    space = unit_scenario_space(num_layers=1)
    algo = Enas()
    settings = {"controller_learning_rate": "0.05", "controller_train_steps": "20", "random_state": "2"}
    rounds = _run_calls(algo, settings, 5, space=space)
    assert all(len(json.loads(a["architecture"])) == 1 for r in rounds for a in r)
    p = problem(space, settings)
    session = algo.saved_session(p)
    assert session is not None and session.learned > 0 and math.isfinite(session.baseline or math.nan)
    assert all(torch.isfinite(t).all() for t in session.controller.state_dict().values())
    roll = session.controller(8)
    assert torch.isfinite(roll.log_prob).all() and torch.isfinite(roll.entropy).all()
    assert (roll.skip_penalty == 0).all()


def test_registering_enas_does_not_import_torch() -> None:
    # The server builds its algorithm before reporting SERVING; torch waits for the first call.
    code = ("import sys; from suggestion.algorithms.registry import algorithm_class; "
            "from tests.suggestion.test_enas_spaces import katib_space, problem; "
            "algorithm_class('enas')().validate(problem(katib_space('enas-gpu'))); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False", out.stderr
