"""controller.template: literal, single-pass trialTemplate substitution."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from controller.template import (
    TemplateError,
    meta_values,
    placeholders,
    remap_path,
    substitute,
    trial_parameter_values,
)


def _experiment(*params: tuple[str, str]) -> SimpleNamespace:
    tps = [SimpleNamespace(name=n, reference=r) for n, r in params]
    return SimpleNamespace(spec=SimpleNamespace(trial_template=SimpleNamespace(trial_parameters=tps)))


def test_values_follow_references_to_assignments_and_metadata() -> None:
    exp = _experiment(("learningRate", "lr"), ("trialName", "${trialSpec.Name}"),
                      ("ns", "${trialSpec.Namespace}"), ("k", "${trialSpec.Kind}"),
                      ("api", "${trialSpec.APIVersion}"), ("team", "${trialSpec.Labels[team]}"))
    values = trial_parameter_values(exp, {"lr": "0.01", "unused": "x"}, "exp-abcdefgh", "kubeflow",
                                    "Job", "batch/v1", labels={"team": "nas"})
    assert values == {"learningRate": "0.01", "trialName": "exp-abcdefgh", "ns": "kubeflow",
                      "k": "Job", "api": "batch/v1", "team": "nas"}


def test_unknown_reference_names_it_and_the_known_parameters() -> None:
    exp = _experiment(("learningRate", "learning_rate"))
    with pytest.raises(TemplateError) as info:
        trial_parameter_values(exp, {"lr": "0.1"}, "t", "default", "Job", "batch/v1")
    assert info.value.reference == "learning_rate"
    assert "lr" in str(info.value)


def test_unknown_meta_field_and_missing_label_are_errors() -> None:
    with pytest.raises(TemplateError, match=r"trialSpec\.Uid"):
        trial_parameter_values(_experiment(("u", "${trialSpec.Uid}")), {}, "t", "d", "Job", "batch/v1")
    with pytest.raises(TemplateError, match="no label 'x'"):
        trial_parameter_values(_experiment(("u", "${trialSpec.Labels[x]}")), {}, "t", "d", "Job", "batch/v1")


def test_substitute_is_literal_and_single_pass() -> None:
    nasty = {
        "a": 'it\'s "quoted" {braces} \\1 \\g<0> $1',
        "b": "${trialParameters.a}",  # a value that looks like a placeholder stays as-is
        "c": "value with  two  spaces",
    }
    template = {
        "command": ["python", "x.py", "--a=${trialParameters.a}", "${trialParameters.b}"],
        "args": ["--c", "${trialParameters.c}", "${trialParameters.a}${trialParameters.c}"],
        "env": [{"name": "HOME_REF", "value": "${HOME}"}],  # not ours: left alone
        "n": 3,
        "flag": True,
        "${trialParameters.c}": None,
    }
    original = copy.deepcopy(template)
    out = substitute(template, nasty)
    assert out["command"] == ["python", "x.py", "--a=" + nasty["a"], "${trialParameters.a}"]
    assert out["args"] == ["--c", nasty["c"], nasty["a"] + nasty["c"]]
    assert out["env"] == [{"name": "HOME_REF", "value": "${HOME}"}]
    assert out["n"] == 3 and out["flag"] is True
    assert nasty["c"] in out
    assert template == original  # input not mutated


def test_substitute_meta_directly_and_unknown_placeholder() -> None:
    meta = meta_values("exp-1", "ns1", "Job", "batch/v1")
    assert substitute(["${trialSpec.Name}/${trialSpec.Namespace}"], {}, meta) == ["exp-1/ns1"]
    with pytest.raises(TemplateError) as info:
        substitute({"x": ["${trialParameters.missing}"]}, {"lr": "1"})
    assert info.value.reference == "${trialParameters.missing}"
    assert "lr" in str(info.value)
    with pytest.raises(TemplateError):
        substitute("${trialSpec.Name}", {})  # no meta given


def test_placeholders_lists_every_reference() -> None:
    obj = {"a": ["${trialParameters.x} ${trialSpec.Name}"], "${trialParameters.y}": 1}
    assert placeholders(obj) == {"${trialParameters.x}", "${trialSpec.Name}", "${trialParameters.y}"}


def test_remap_path_moves_a_mount_path_and_what_is_below_it_only() -> None:
    argv = {"command": ["python", "--checkpoint=/ckpt/", "/ckpt", "/ckpt/model.pt", "--x=/ckpt:/other",
                        "/data/ckpt", "/ckpt2", "/ckpt-old/a", "a,/ckpt"]}
    out = remap_path(argv, "/ckpt", "/work/exp/t1")
    assert out == {"command": ["python", "--checkpoint=/work/exp/t1/", "/work/exp/t1", "/work/exp/t1/model.pt",
                               "--x=/work/exp/t1:/other", "/data/ckpt", "/ckpt2", "/ckpt-old/a", "a,/work/exp/t1"]}
    assert argv["command"][1] == "--checkpoint=/ckpt/"  # not mutated
    assert remap_path({"env": "${x}/ckpt"}, "/ckpt", "/t") == {"env": "${x}/ckpt"}
    assert remap_path("/ckpt", "/ckpt", r"C:\a\1") == r"C:\a\1"  # the target is inserted verbatim
