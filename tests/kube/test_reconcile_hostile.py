"""A trialTemplate ConfigMap with hostile YAML: a clear TemplateError, never a hang or a crash.

FakeKubeApi stands in for the API server (none can run here); the template reading is real.
"""

from __future__ import annotations

import copy
import time

import pytest

from controller.kube.context import Context
from controller.kube.trial import trial_template
from controller.template import TemplateError
from kubenas.experiment import load_experiment_dict
from tests.kube.conftest import EXPERIMENT
from tests.kube.fake_cluster import FakeKubeApi

NS = "team-a"
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" if i else "l0: &l0 [lol, lol, lol]\n"
                 for i in range(9))


def _experiment():  # type: ignore[no-untyped-def]
    body = copy.deepcopy(EXPERIMENT)
    template = body["spec"]["trialTemplate"]
    template.pop("trialSpec")
    template["configMap"] = {"configMapName": "templates", "configMapNamespace": NS, "templatePath": "job.yaml"}
    template["successCondition"] = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    template["failureCondition"] = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    return load_experiment_dict(body)


@pytest.mark.parametrize(("text", "fragment"), [
    (LAUGHS, "YAML values"),                    # before: expanded to 9**8 items by whatever walked it next
    ("a: &a [*a]\n", "recursive"),
    ("spec: [unclosed\n", "not usable YAML"),   # before: a yaml.YAMLError traceback in the handler
    ("a: 1\na: 2\n", "duplicate key"),
    ("kind: Job\n---\nkind: Job\n", "one YAML mapping"),
    ("", "one YAML mapping"),
])
def test_a_hostile_template_is_a_template_error(text: str, fragment: str) -> None:
    api = FakeKubeApi()
    api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "templates", "namespace": NS},
                "data": {"job.yaml": text}})
    start = time.monotonic()
    with pytest.raises(TemplateError) as info:
        trial_template(Context(api=api), _experiment(), NS)
    assert time.monotonic() - start < 2
    assert "job.yaml" in str(info.value) and fragment in str(info.value)
