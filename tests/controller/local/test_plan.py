"""controller.local.plan: what a local run takes from the trialTemplate, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from controller.local.errors import RunError
from controller.local.plan import TrialPlan, plan_trials
from kubenas.experiment import load_experiment_dict
from tests.controller.local.parts import CONTAINER, experiment, experiment_doc, with_container


def test_a_job_template_becomes_a_plan_with_placeholders_kept() -> None:
    plan = plan_trials(experiment(container={**CONTAINER, "env": [{"name": "MODE", "value": 3},
                                                                   {"name": "EMPTY"}]}))
    assert isinstance(plan, TrialPlan)
    assert plan.container["args"] == ["--lr=${trialParameters.lr}"]
    assert dict(plan.env) == {"MODE": "3", "EMPTY": ""}
    assert (plan.kind, plan.api_version, plan.namespace) == ("Job", "batch/v1", "default")
    assert (plan.collector, plan.file_path, plan.file_format) == ("StdOut", "", "TEXT")


def test_the_file_collector_keeps_its_path_and_format() -> None:
    collector = {"collector": {"kind": "File"},
                 "source": {"fileSystemPath": {"path": "/m/${trialSpec.Name}.json", "kind": "File",
                                               "format": "JSON"}}}
    plan = plan_trials(experiment(collector=collector))
    assert (plan.collector, plan.file_path, plan.file_format) == ("File", "/m/${trialSpec.Name}.json", "JSON")


def test_every_problem_of_the_primary_container_is_named_at_once() -> None:
    container = {"name": "training-container", "args": "not-a-list",
                 "env": [{"value": "x"}, {"name": "1BAD"}, {"name": "POD", "valueFrom": {"fieldRef": {}}},
                         {"name": "WD", "value": "${trialParameters.wd}"}]}
    with pytest.raises(RunError) as caught:
        plan_trials(with_container(experiment(), container))
    at = "spec.trialTemplate.trialSpec.spec.template.spec.containers[0]"
    lines = caught.value.lines()
    assert [line.split(":")[0] for line in lines] == [
        f"{at}.command", f"{at}.args", f"{at}.env[0].name", f"{at}.env[1].name", f"{at}.env[2].valueFrom",
        "spec.trialTemplate"]
    assert "missing" in lines[0] and "must be a list of strings" in lines[1]
    assert lines[-1] == "spec.trialTemplate: '${trialParameters.wd}' — not in trialParameters (lr)"


def test_a_placeholder_of_an_undefined_trial_parameter_is_refused() -> None:
    container = {**CONTAINER, "args": ["--lr=${trialParameters.lr}", "--wd=${trialParameters.wd}"]}
    with pytest.raises(RunError) as caught:
        plan_trials(with_container(experiment(), container))
    assert caught.value.lines() == ["spec.trialTemplate: '${trialParameters.wd}' — not in trialParameters (lr)"]


def test_a_missing_primary_container_names_those_found() -> None:
    with pytest.raises(RunError, match=r"primaryContainerName: 'training-container' — no container of that name "
                                       r"in .*containers \(found: other\)"):
        plan_trials(with_container(experiment(), {**CONTAINER, "name": "other"}))


def test_a_collector_a_local_run_cannot_use_is_refused() -> None:
    doc: dict[str, Any] = experiment_doc(collector={"collector": {"kind": "PrometheusMetric"}})
    with pytest.raises(RunError, match=r"collector.kind: 'PrometheusMetric' — kubenas run supports StdOut, File, "
                                       r"Push, None"):
        plan_trials(load_experiment_dict(doc))
