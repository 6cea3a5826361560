"""Experiment spec: Katib's examples load, defaults, every rule with its message, round trips."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kubenas.api.v1beta1 import api_pb2
from kubenas_cli.app import app
from kubenas.experiment import (
    Experiment,
    FieldError,
    SpecError,
    load_experiment_dict,
    load_experiment_file,
    load_experiment_text,
)
from kubenas.space import Distribution, ParameterType
from kubenas.trials import MetricStrategy, ObjectiveType

ROOT = Path(__file__).resolve().parents[2]
KATIB = ROOT / "tests" / "data" / "katib"
KATIB_EXAMPLES = sorted(KATIB.glob("*.yaml"))
# Katib's own webhook refuses simple-pbt.yaml (maxFailedTrialCount 3 > maxTrialCount 2); so do we.
KATIB_REFUSED = {"simple-pbt.yaml": "spec.maxFailedTrialCount"}
KATIB_VALID = [p for p in KATIB_EXAMPLES if p.name not in KATIB_REFUSED]
OUR_EXAMPLES = [ROOT / "examples" / "random-hpo.yaml", ROOT / "examples" / "grid-hpo.yaml"]
JOB_SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'


def base() -> dict[str, Any]:
    """A minimal valid HPO experiment; tests break one thing at a time."""
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "quad"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "maxTrialCount": 6,
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-1", "max": "1"}},
                {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "4"}},
            ],
            "trialTemplate": {
                "trialParameters": [{"name": "x", "reference": "x"}, {"name": "n", "reference": "n"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {"template": {"spec": {
                        "containers": [{
                            "name": "training-container",
                            "image": "kubenas/trainer:latest",
                            "command": ["python", "q.py", "--x=${trialParameters.x}", "--n=${trialParameters.n}"],
                        }],
                        "restartPolicy": "Never",
                    }}},
                },
            },
        },
    }


def errors_of(data: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(SpecError) as info:
        load_experiment_dict(data)
    return info.value.errors


def only_error(data: dict[str, Any]) -> FieldError:
    errors = errors_of(data)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# --- Katib's own examples and ours -----------------------------------------------------


@pytest.mark.parametrize("path", KATIB_VALID + OUR_EXAMPLES,
                         ids=lambda p: p.name)
def test_examples_validate(path: Path) -> None:
    exp = load_experiment_file(path)
    assert exp.name == yaml.safe_load(path.read_text())["metadata"]["name"]
    assert exp.search_space().is_nas == exp.is_nas
    exp.search_space().check()


def test_katib_examples_are_present() -> None:
    assert [p.stem for p in KATIB_EXAMPLES] == [
        "bayesian-optimization", "cma-es", "darts-cpu", "darts-gpu", "enas-cpu", "enas-gpu", "grid",
        "hyperband", "multivariate-tpe", "random", "simple-pbt", "sobol", "tpe"]


@pytest.mark.parametrize("name", sorted(KATIB_REFUSED))
def test_katib_examples_that_break_katibs_rules_are_refused(name: str) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_file(KATIB / name)
    assert KATIB_REFUSED[name] in str(info.value)


def test_random_example_reads_as_katib_means_it() -> None:
    exp = load_experiment_file(KATIB / "random.yaml")
    assert (exp.name, exp.namespace, exp.algorithm_name, exp.is_nas) == ("random", "kubeflow", "random", False)
    assert (exp.max_trial_count, exp.parallel_trial_count, exp.max_failed_trial_count) == (12, 3, 3)
    lr, layers, optimizer = exp.search_space().parameters
    assert (lr.type, lr.low, lr.high) == (ParameterType.DOUBLE, 0.01, 0.03)
    assert (layers.name, layers.type, layers.low, layers.high) == ("num-layers", ParameterType.INT, 2, 5)
    assert optimizer.feasible.list == ("sgd", "adam", "ftrl")
    obj = exp.objective()
    assert (obj.type, obj.metric_name, obj.goal, obj.additional_metric_names) == (
        ObjectiveType.MAXIMIZE, "Validation-accuracy", 0.99, ("Train-accuracy",))


def test_darts_example_keeps_what_katib_means() -> None:
    exp = load_experiment_file(KATIB / "darts-gpu.yaml")
    nas = exp.search_space().nas_config
    assert nas is not None and nas.graph_config.num_layers == 3
    assert nas.graph_config.input_sizes == () and nas.graph_config.output_sizes == ()
    assert [op.operation_type for op in nas.operations][-1] == "skip_connection"
    assert exp.algorithm_settings() == {"num_epochs": "3"}
    assert exp.spec.metrics_collector_spec.metrics_format == (r"([\w-]+)=(Genotype.*)",)


def test_enas_gpu_example_has_106_operations() -> None:
    nas = load_experiment_file(KATIB / "enas-gpu.yaml").search_space().nas_config
    assert nas is not None and len(nas.expanded()) == 106


# --- defaults ---------------------------------------------------------------------------


def test_katib_defaults_are_applied() -> None:
    exp = load_experiment_dict(base())
    spec = exp.spec
    assert spec.parallel_trial_count == 3
    assert spec.resume_policy.value == "Never" and exp.resume_policy == "Never"
    assert spec.metrics_collector_spec.collector.kind.value == "StdOut"
    assert spec.trial_template is not None
    assert spec.trial_template.primary_container_name == "training-container"
    assert (spec.trial_template.success_condition, spec.trial_template.failure_condition) == (JOB_SUCCESS, JOB_FAILURE)
    assert [(s.name, s.value) for s in spec.objective.metric_strategies] == [("loss", MetricStrategy.MIN)]
    assert all(p.feasible.distribution is Distribution.UNIFORM for p in spec.parameters)
    assert exp.namespace == "default" and exp.max_failed_trial_count is None


def test_metric_strategies_fill_every_metric_but_keep_given_ones() -> None:
    data = base()
    data["spec"]["objective"] = {
        "type": "maximize", "objectiveMetricName": "acc", "additionalMetricNames": ["loss", "f1"],
        "metricStrategies": [{"name": "loss", "value": "latest"}],
    }
    obj = load_experiment_dict(data).objective()
    assert dict(obj.strategies) == {"loss": MetricStrategy.LATEST, "acc": MetricStrategy.MAX, "f1": MetricStrategy.MAX}


def test_given_conditions_are_kept() -> None:
    data = base()
    data["spec"]["trialTemplate"]["successCondition"] = "status.done"
    template = load_experiment_dict(data).spec.trial_template
    assert template is not None
    assert (template.success_condition, template.failure_condition) == ("status.done", JOB_FAILURE)


def test_kubeflow_job_gets_kubeflow_conditions_and_pod_labels() -> None:
    data = base()
    trial = data["spec"]["trialTemplate"]
    trial["trialSpec"] = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                          "spec": {"args": ["${trialParameters.x}", "${trialParameters.n}"]}}
    template = load_experiment_dict(data).spec.trial_template
    assert template is not None
    assert template.success_condition == 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
    assert template.primary_pod_labels == {"training.kubeflow.org/job-role": "master"}


def test_file_collector_gets_katib_default_path() -> None:
    data = base()
    data["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "File"}}
    fsp = load_experiment_dict(data).spec.metrics_collector_spec.source.file_system_path
    assert (fsp.path, fsp.kind.value, fsp.format.value) == ("/var/log/katib/metrics.log", "File", "TEXT")


def test_katib_exported_uniform_on_a_categorical_is_accepted() -> None:
    data = base()
    data["spec"]["parameters"].append(
        {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd"], "distribution": "uniform"}})
    exp = load_experiment_dict(data)
    assert exp.spec.parameters[2].feasible.distribution is Distribution.UNIFORM  # kept as written
    assert exp.search_space().parameters[2].feasible.distribution is None  # means nothing for a list
    data["spec"]["parameters"][2]["feasibleSpace"]["distribution"] = "normal"
    error = errors_of(data)[0]
    assert (error.path, error.value) == ("spec.parameters[2].feasibleSpace.distribution", "normal")


def test_numbers_may_be_yaml_numbers_or_text() -> None:
    text = yaml.safe_dump(base())
    as_numbers = text.replace("min: '-1'", "min: -1").replace("max: '1'", "max: 1.0")
    assert as_numbers != text
    feasible = load_experiment_text(as_numbers).spec.parameters[0].feasible
    assert (feasible.min, feasible.max) == ("-1", "1.0")
    assert load_experiment_text(as_numbers).search_space().parameters[0].high == 1.0


# --- rules ------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(data: dict[str, Any]) -> None:
        node: Any = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        last = keys[-1]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return apply


def _append(path: str, value: Any) -> Mutation:
    def apply(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path.split("."):
            node = node[int(key)] if key.isdigit() else node[key]
        node.append(copy.deepcopy(value))
    return apply


def _both(*mutations: Mutation) -> Mutation:
    def apply(data: dict[str, Any]) -> None:
        for mutate in mutations:
            mutate(data)
    return apply


_DELETE = object()
C = "spec.trialTemplate.trialSpec.spec.template.spec.containers.0"

RULE_CASES: list[tuple[str, Mutation, str, Any, str]] = [
    ("name-chars", _set("metadata.name", "Quad_1"), "metadata.name", "Quad_1", "lower-case"),
    ("name-length", _set("metadata.name", "q" * 41), "metadata.name", "q" * 41, "at most 40"),
    ("name-missing", _set("metadata.name", _DELETE), "metadata.name", None, "required"),
    ("max-trials", _set("spec.maxTrialCount", 0), "spec.maxTrialCount", 0, "> 0"),
    ("parallel-zero", _set("spec.parallelTrialCount", 0), "spec.parallelTrialCount", 0, "> 0"),
    ("parallel-over-max", _set("spec.parallelTrialCount", 7), "spec.parallelTrialCount", 7, "<= spec.maxTrialCount (6)"),
    ("failed-negative", _set("spec.maxFailedTrialCount", -1), "spec.maxFailedTrialCount", -1, ">= 0"),
    ("failed-over-max", _set("spec.maxFailedTrialCount", 9), "spec.maxFailedTrialCount", 9, "<= spec.maxTrialCount"),
    ("count-not-int", _set("spec.maxTrialCount", "6"), "spec.maxTrialCount", "6", "valid integer"),
    ("objective-missing", _set("spec.objective", _DELETE), "spec.objective", None, "required"),
    ("objective-type", _set("spec.objective.type", "maximise"), "spec.objective.type", "maximise", "'minimize' or 'maximize'"),
    ("metric-empty", _set("spec.objective.objectiveMetricName", ""), "spec.objective.objectiveMetricName", "", "non-empty"),
    ("goal-infinite", _set("spec.objective.goal", float("inf")), "spec.objective.goal", float("inf"), "finite"),
    ("additional-repeats-objective", _set("spec.objective.additionalMetricNames", ["loss"]),
     "spec.objective.additionalMetricNames[0]", "loss", "must not repeat"),
    ("strategy-unknown-metric", _set("spec.objective.metricStrategies", [{"name": "acc", "value": "max"}]),
     "spec.objective.metricStrategies[0].name", "acc", "objective or an additional metric"),
    ("strategy-value", _set("spec.objective.metricStrategies", [{"name": "loss", "value": "median"}]),
     "spec.objective.metricStrategies[0].value", "median", "'min', 'max' or 'latest'"),
    ("algorithm-missing", _set("spec.algorithm", _DELETE), "spec.algorithm", None, "required"),
    ("algorithm-name-empty", _set("spec.algorithm.algorithmName", ""), "spec.algorithm.algorithmName", "", "non-empty"),
    ("settings-duplicate", _set("spec.algorithm.algorithmSettings", [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]),
     "spec.algorithm.algorithmSettings[1].name", "a", "unique"),
    ("early-stopping-name", _set("spec.earlyStopping", {"algorithmName": ""}), "spec.earlyStopping.algorithmName", "", "non-empty"),
    ("resume-policy", _set("spec.resumePolicy", "Sometimes"), "spec.resumePolicy", "Sometimes", "'Never', 'LongRunning' or 'FromVolume'"),
    ("unknown-field", _set("spec.maxTrialCountt", 3), "spec.maxTrialCountt", 3, "unknown field; allowed here: "),
    ("parameter-type", _set("spec.parameters.0.parameterType", "float"), "spec.parameters[0].parameterType", "float", "'double'"),
    ("min-over-max", _set("spec.parameters.1.feasibleSpace.min", "9"), "spec.parameters[1].feasibleSpace.max", "4", "must be >= min (9)"),
    ("int-not-int", _set("spec.parameters.1.feasibleSpace.max", "4.5"), "spec.parameters[1].feasibleSpace.max", "4.5", "integer"),
    ("not-a-number", _set("spec.parameters.0.feasibleSpace.min", "low"), "spec.parameters[0].feasibleSpace.min", "low", "finite number"),
    ("list-on-double", _set("spec.parameters.0.feasibleSpace.list", ["1"]), "spec.parameters[0].feasibleSpace.list", ["1"], "must be empty"),
    ("log-needs-positive", _set("spec.parameters.0.feasibleSpace.distribution", "logUniform"),
     "spec.parameters[0].feasibleSpace.min", "-1", "> 0"),
    ("yaml-boolean", _set("spec.parameters.0", {"name": "x", "parameterType": "categorical", "feasibleSpace": {"list": [True]}}),
     "spec.parameters[0].feasibleSpace.list[0]", True, "quote the value"),
    ("duplicate-parameter", _append("spec.parameters", {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "0", "max": "1"}}),
     "spec.parameters[2].name", "x", "unique"),
    ("no-space", _set("spec.parameters", []), "spec.parameters", [], "one of spec.parameters"),
    ("template-missing", _set("spec.trialTemplate", _DELETE), "spec.trialTemplate", None, "required"),
    ("template-source-missing", _set("spec.trialTemplate.trialSpec", _DELETE), "spec.trialTemplate.trialSpec", None, "trialSpec or configMap"),
    ("config-map-and-spec", _set("spec.trialTemplate.configMap", {"configMapName": "t", "configMapNamespace": "ns", "templatePath": "p"}),
     "spec.trialTemplate.configMap", "t", "only one of trialSpec or configMap"),
    ("trial-parameter-duplicate", _append("spec.trialTemplate.trialParameters", {"name": "x", "reference": "${trialSpec.Name}"}),
     "spec.trialTemplate.trialParameters[2].name", "x", "unique"),
    ("reference-duplicate", _both(_append("spec.trialTemplate.trialParameters", {"name": "x2", "reference": "x"}),
                                  _append(f"{C}.command", "--x2=${trialParameters.x2}")),
     "spec.trialTemplate.trialParameters[2].reference", "x", "one trialParameter"),
    ("trial-parameter-braces", _append("spec.trialTemplate.trialParameters", {"name": "a{b", "reference": "${trialSpec.Name}"}),
     "spec.trialTemplate.trialParameters[2].name", "a{b", "without '{' or '}'"),
    ("reference-unknown", _set("spec.trialTemplate.trialParameters.1.reference", "m"),
     "spec.trialTemplate.trialParameters[1].reference", "m", "spec.parameters name (x, n)"),
    ("reference-empty", _set("spec.trialTemplate.trialParameters.1.reference", ""),
     "spec.trialTemplate.trialParameters[1].reference", "", "must name a parameter"),
    ("placeholder-undefined", _append(f"{C}.command", "--m=${trialParameters.m}"),
     "spec.trialTemplate.trialSpec", "${trialParameters.m}", "not defined"),
    ("primary-container", _set("spec.trialTemplate.primaryContainerName", "main"),
     "spec.trialTemplate.primaryContainerName", "main", "one of the Job's containers: training-container"),
    ("trial-metadata-name", _set("spec.trialTemplate.trialSpec.metadata", {"name": "fixed"}),
     "spec.trialTemplate.trialSpec.metadata.name", "fixed", "must be omitted"),
    ("trial-kind-missing", _set("spec.trialTemplate.trialSpec.kind", _DELETE), "spec.trialTemplate.trialSpec.kind", None, "required"),
    ("collector-kind", _set("spec.metricsCollectorSpec", {"collector": {"kind": "Stdout"}}),
     "spec.metricsCollectorSpec.collector.kind", "Stdout", "'StdOut'"),
    ("file-collector-relative", _set("spec.metricsCollectorSpec",
                                     {"collector": {"kind": "File"}, "source": {"fileSystemPath": {"path": "m.log"}}}),
     "spec.metricsCollectorSpec.source.fileSystemPath.path", "m.log", "absolute path"),
    ("custom-collector", _set("spec.metricsCollectorSpec", {"collector": {"kind": "Custom"}}),
     "spec.metricsCollectorSpec.collector.customCollector", None, "container spec"),
    ("metrics-format-groups", _set("spec.metricsCollectorSpec", {"source": {"filter": {"metricsFormat": ["loss=(\\d+)"]}}}),
     "spec.metricsCollectorSpec.source.filter.metricsFormat[0]", "loss=(\\d+)", "has 1 group"),
    ("metrics-format-regex", _set("spec.metricsCollectorSpec", {"source": {"filter": {"metricsFormat": ["(a)(b"]}}}),
     "spec.metricsCollectorSpec.source.filter.metricsFormat[0]", "(a)(b", "does not compile"),
]


@pytest.mark.parametrize("case", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule(case: tuple[str, Mutation, str, Any, str]) -> None:
    _, mutate, path, value, allowed = case
    data = base()
    mutate(data)
    error = only_error(data)
    assert error.path == path
    assert error.value == value
    assert allowed in error.allowed
    assert str(error) == f"{path}: {value!r} — {error.allowed}"


def test_trial_parameter_never_used() -> None:
    data = base()
    data["spec"]["trialTemplate"]["trialParameters"].append({"name": "extra", "reference": "${trialSpec.Name}"})
    error = only_error(data)
    assert (error.path, error.value) == ("spec.trialTemplate.trialParameters[2].name", "extra")
    assert "${trialParameters.extra}" in error.allowed


@pytest.mark.parametrize("reference", ["${trialSpec.Name}", "${trialSpec.Namespace}", "${trialSpec.Labels[app]}"])
def test_meta_references_are_allowed(reference: str) -> None:
    data = base()
    data["spec"]["trialTemplate"]["trialParameters"].append({"name": "meta", "reference": reference})
    data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"].append(
        "${trialParameters.meta}")
    assert load_experiment_dict(data).name == "quad"


def test_both_parameters_and_nas_config() -> None:
    data = base()
    data["spec"]["nasConfig"] = yaml.safe_load((KATIB / "darts-cpu.yaml").read_text())["spec"]["nasConfig"]
    paths = [e.path for e in errors_of(data)]
    assert paths == ["spec.nasConfig"]


def test_nas_operation_errors_are_all_reported_with_their_index() -> None:
    data = yaml.safe_load((KATIB / "enas-cpu.yaml").read_text())
    ops = data["spec"]["nasConfig"]["operations"]
    ops[1]["parameters"][0]["feasibleSpace"]["list"] = []
    ops[3]["parameters"][1]["feasibleSpace"]["min"] = "9"
    data["spec"]["nasConfig"]["graphConfig"]["numLayers"] = 0
    paths = [e.path for e in errors_of(data)]
    assert paths == [
        "spec.nasConfig.graphConfig.numLayers",
        "spec.nasConfig.operations[1].parameters[0].feasibleSpace.list",
        "spec.nasConfig.operations[3].parameters[1].feasibleSpace.max",
    ]


def test_config_map_template_needs_its_fields_and_conditions() -> None:
    data = base()
    template = data["spec"]["trialTemplate"]
    del template["trialSpec"]
    template["configMap"] = {"configMapName": "templates", "configMapNamespace": "kubeflow"}
    paths = [e.path for e in errors_of(data)]
    assert paths == ["spec.trialTemplate.configMap.templatePath", "spec.trialTemplate.successCondition",
                     "spec.trialTemplate.failureCondition"]
    template["configMap"]["templatePath"] = "default.yaml"
    template["successCondition"], template["failureCondition"] = "status.ok", "status.bad"
    assert load_experiment_dict(data).spec.trial_template.config_map.template_path == "default.yaml"


def test_all_errors_are_collected() -> None:
    data = base()
    data["metadata"]["name"] = "Bad_Name"
    data["spec"]["maxTrialCount"] = 0
    data["spec"]["objective"]["type"] = "maximise"
    data["spec"]["parameters"][0]["feasibleSpace"]["stpe"] = "1"
    data["spec"]["parameters"][1]["feasibleSpace"]["min"] = "9"
    data["spec"]["trialTemplate"]["primaryContainerName"] = "main"
    data["spec"]["metricsCollectorSpec"] = {"source": {"filter": {"metricsFormat": ["("]}}}
    errors = errors_of(data)
    assert sorted(e.path for e in errors) == sorted([
        "metadata.name",
        "spec.maxTrialCount",
        "spec.objective.type",
        "spec.parameters[0].feasibleSpace.stpe",
        "spec.parameters[1].feasibleSpace.max",
        "spec.trialTemplate.primaryContainerName",
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
    ])


def test_header_errors() -> None:
    errors = errors_of({"apiVersion": "v1", "kind": "Pod"})
    assert [(e.path, e.value) for e in errors] == [("apiVersion", "v1"), ("kind", "Pod"), ("metadata", None), ("spec", None)]
    assert "kubeflow.org/v1beta1" in errors[0].allowed


def test_yaml_errors_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nmetadata: {name: a}\n bad: 1\n")
    with pytest.raises(SpecError) as info:
        load_experiment_file(path)
    (error,) = info.value.errors
    assert (error.path, error.value) == ("line 4, column 2", "bad: 1")
    assert "not valid YAML" in error.allowed


def test_duplicate_yaml_keys_are_errors() -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_text("apiVersion: a\napiVersion: b\n")
    (error,) = info.value.errors
    assert (error.path, error.value) == ("apiVersion", "apiVersion")
    assert "duplicate key 'apiVersion': given again at line 2 (first at line 1)" in error.allowed
    assert error.allowed.endswith("(line 2, column 1)")


@pytest.mark.parametrize("text, allowed", [("- 1\n- 2\n", "mapping"), ("", "mapping"), ("just text", "mapping")])
def test_document_must_be_a_mapping(text: str, allowed: str) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_text(text)
    assert allowed in info.value.errors[0].allowed


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_file(tmp_path / "none.yaml")
    assert info.value.lines() == [f"file: {str(tmp_path / 'none.yaml')!r} — does not exist"]


def test_experiment_is_found_among_other_documents() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\n---\n" + yaml.safe_dump(base())
    assert load_experiment_text(text).name == "quad"


def test_extra_checks_run_on_a_valid_spec() -> None:
    def known_algorithm(exp: Experiment) -> list[FieldError]:
        names = ("grid", "bayesian")
        if exp.algorithm_name in names:
            return []
        return [FieldError("spec.algorithm.algorithmName", exp.algorithm_name, f"must be one of {', '.join(names)}")]

    with pytest.raises(SpecError) as info:
        load_experiment_dict(base(), extra_checks=[known_algorithm])
    assert info.value.lines() == ["spec.algorithm.algorithmName: 'random' — must be one of grid, bayesian"]


# --- round trips ------------------------------------------------------------------------


def _wire(msg: api_pb2.Experiment) -> bytes:
    return msg.SerializeToString(deterministic=True)


@pytest.mark.parametrize("path", KATIB_VALID + OUR_EXAMPLES, ids=lambda p: p.name)
def test_yaml_model_proto_model_proto_is_identical(path: Path) -> None:
    exp = load_experiment_file(path)
    first = exp.to_proto()
    again = Experiment.from_proto(first)
    assert _wire(again.to_proto()) == _wire(first)
    assert again.search_space() == exp.search_space()
    assert again.algorithm_settings() == exp.algorithm_settings()


def test_proto_carries_the_spec() -> None:
    exp = load_experiment_file(KATIB / "random.yaml")
    msg = exp.to_proto()
    assert msg.name == "random"
    assert (msg.spec.max_trial_count, msg.spec.parallel_trial_count) == (12, 3)
    assert msg.spec.objective.type == api_pb2.MAXIMIZE and msg.spec.objective.goal == 0.99
    assert list(msg.spec.objective.additional_metric_names) == ["Train-accuracy"]
    assert [p.name for p in msg.spec.parameter_specs.parameters] == ["lr", "num-layers", "optimizer"]
    lr = msg.spec.parameter_specs.parameters[0]
    assert (lr.parameter_type, lr.feasible_space.min, lr.feasible_space.max) == (api_pb2.DOUBLE, "0.01", "0.03")
    assert lr.feasible_space.distribution == api_pb2.UNIFORM
    assert msg.spec.algorithm.algorithm_name == "random"
    assert not msg.spec.HasField("nas_config")


def test_from_proto_with_the_rest_of_the_spec_validates() -> None:
    exp = load_experiment_dict(base())
    extra = {"trialTemplate": exp.to_dict()["spec"]["trialTemplate"]}
    again = Experiment.from_proto(exp.to_proto(), namespace="team-a", extra_spec=extra, validate=True)
    assert again.namespace == "team-a"
    assert again.spec.trial_template == exp.spec.trial_template
    with pytest.raises(SpecError) as info:
        Experiment.from_proto(exp.to_proto(), validate=True)
    assert info.value.paths == ["spec.trialTemplate"]


def test_from_proto_rejects_unknown_enums() -> None:
    msg = load_experiment_dict(base()).to_proto()
    msg.spec.parameter_specs.parameters[1].parameter_type = api_pb2.UNKNOWN_TYPE
    with pytest.raises(SpecError) as info:
        Experiment.from_proto(msg)
    assert info.value.paths == ["spec.parameters[1].parameterType"]


@pytest.mark.parametrize("path", KATIB_VALID + OUR_EXAMPLES, ids=lambda p: p.name)
def test_to_dict_reloads_to_the_same_experiment(path: Path) -> None:
    exp = load_experiment_file(path)
    data = exp.to_dict()
    assert data["spec"]["parallelTrialCount"] == exp.parallel_trial_count
    assert load_experiment_dict(copy.deepcopy(data)) == exp
    assert load_experiment_text(yaml.safe_dump(data)) == exp


# Hypothesis: any well-formed HPO space survives YAML -> model -> proto -> model -> proto.
_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_", min_size=1, max_size=8)


@st.composite
def _parameter(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["double", "int", "discrete", "categorical"]))
    if kind == "int":
        lo = draw(st.integers(-1000, 1000))
        fs: dict[str, Any] = {"min": str(lo), "max": str(lo + draw(st.integers(0, 100)))}
        if draw(st.booleans()):
            fs["step"] = str(draw(st.integers(1, 5)))
    elif kind == "double":
        lo = draw(st.floats(0.001, 100, allow_nan=False))
        fs = {"min": repr(lo), "max": repr(lo + draw(st.floats(0, 100, allow_nan=False))),
              "distribution": draw(st.sampled_from(["uniform", "logUniform", "normal", "logNormal"]))}
    elif kind == "discrete":
        fs = {"list": [str(v) for v in draw(st.lists(st.integers(-50, 50), min_size=1, max_size=5, unique=True))]}
    else:
        fs = {"list": draw(st.lists(_names, min_size=1, max_size=5, unique=True))}
    return {"name": name, "parameterType": kind, "feasibleSpace": fs}


@st.composite
def _experiments(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    data = base()
    data["spec"]["parameters"] = [draw(_parameter(n)) for n in names]
    data["spec"]["objective"] = {
        "type": draw(st.sampled_from(["minimize", "maximize"])),
        "objectiveMetricName": "loss",
        "goal": draw(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False).filter(lambda g: g != 0))),
    }
    if data["spec"]["objective"]["goal"] is None:
        del data["spec"]["objective"]["goal"]
    data["spec"]["maxTrialCount"] = draw(st.integers(3, 100))
    data["spec"]["algorithm"]["algorithmSettings"] = [{"name": n, "value": str(i)} for i, n in enumerate(names)]
    args = [f"--{n}=${{trialParameters.p{i}}}" for i, n in enumerate(names)]
    data["spec"]["trialTemplate"]["trialParameters"] = [{"name": f"p{i}", "reference": n} for i, n in enumerate(names)]
    data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"] = ["run", *args]
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_experiments())
def test_generated_specs_round_trip(data: dict[str, Any]) -> None:
    exp = load_experiment_text(yaml.safe_dump(data))
    first = exp.to_proto()
    again = Experiment.from_proto(first)
    assert _wire(again.to_proto()) == _wire(first)
    assert again.search_space() == exp.search_space()
    assert again.objective().goal == exp.objective().goal


# --- the CLI ----------------------------------------------------------------------------


def test_validate_command_ok() -> None:
    result = CliRunner().invoke(app, ["validate", str(KATIB / "enas-gpu.yaml")])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "enas-gpu" in result.output


def test_validate_command_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    data = base()
    data["spec"]["maxTrialCount"] = 0
    data["metadata"]["name"] = "Bad"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "metadata.name: 'Bad'" in result.output
    assert "spec.maxTrialCount: 0" in result.output
    assert "Traceback" not in result.output


# --- robustness: any damage gives SpecError, never another exception ---------------------

_junk = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=6),
    st.sampled_from(["${trialParameters.q}", "Job", "batch/v1", "uniform", "x"]),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
    st.dictionaries(st.sampled_from(["name", "kind", "spec", "a"]), st.integers(), max_size=2),
)


def _nodes(tree: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _nodes(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += _nodes(value, (*path, i))
    return found


def _replace(tree: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copied = copy.copy(tree)
    copied[path[0]] = _replace(tree[path[0]], path[1:], value)
    return copied


@pytest.mark.parametrize("source", ["base", "enas-cpu.yaml", "darts-cpu.yaml", "random.yaml"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_specs_fail_cleanly(source: str, data: st.DataObject) -> None:
    original = base() if source == "base" else yaml.safe_load((KATIB / source).read_text())
    nodes = _nodes(original)
    damaged = original
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(nodes))
        try:
            damaged = _replace(damaged, path, data.draw(_junk))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this node
    try:
        load_experiment_dict(damaged)
    except SpecError as exc:
        assert exc.errors and all(isinstance(e, FieldError) and e.path for e in exc.errors)
