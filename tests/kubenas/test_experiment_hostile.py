"""Hostile Experiment YAML: alias bombs, recursion, huge and non-text files, megabyte values.

Each case must end in one SpecError naming the field, promptly and in bounded memory.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
import yaml

from kubenas.experiment import (
    SpecError,
    load_experiment_dict,
    load_experiment_file,
    load_experiment_text,
)
from kubenas.experiment_errors import FieldError
from kubenas.experiment_yaml import (
    MAX_YAML_BYTES,
    MAX_YAML_NODES,
    YamlBombError,
    load_yaml_documents,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "random-hpo.yaml").read_text()

LAUGHS = "".join(
    f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" if i else '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(9)
)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("where", ["annotations", "maxTrialCount", "trialSpec"])
def test_billion_laughs_is_refused_fast_without_memory(where: str) -> None:
    # 9**9 "lol"s once expanded: building it would take minutes and gigabytes.
    text = EXAMPLE.replace("metadata:\n", "metadata:\n  annotations:\n" + LAUGHS.replace("  l", "    l"))
    if where == "maxTrialCount":
        text = text.replace("maxTrialCount: 12", "maxTrialCount: *l8")
    elif where == "trialSpec":
        text = text.replace("kind: Job\n", "kind: Job\n      bomb: *l8\n")
    before, start = _max_rss_mb(), time.monotonic()
    with pytest.raises(SpecError) as info:
        load_experiment_text(text, "bomb.yaml")
    assert time.monotonic() - start < 2
    assert _max_rss_mb() - before < 200
    (error,) = info.value.errors
    assert error.path == "yaml" and "alias" in error.allowed and str(MAX_YAML_NODES) in error.allowed


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: [1, *a]}\n"])
def test_a_recursive_alias_is_refused(text: str) -> None:
    with pytest.raises(YamlBombError, match="recursive"):
        load_yaml_documents(text)
    with pytest.raises(SpecError, match="recursive"):
        load_experiment_text(text)


def test_shared_aliases_below_the_limit_still_load() -> None:
    # Anchors are legitimate YAML (Katib users reuse env blocks); only the expanded size counts.
    text = EXAMPLE.replace("metadata:\n", "metadata:\n  labels: &labels {team: a, tier: b}\n  annotations: *labels\n")
    exp = load_experiment_text(text)
    assert exp.metadata.annotations == {"team": "a", "tier": "b"}


def test_many_documents_each_checked() -> None:
    docs = load_yaml_documents("a: 1\n---\nb: &b [1, 2]\nc: *b\n")
    assert docs == [{"a": 1}, {"b": [1, 2], "c": [1, 2]}]
    with pytest.raises(YamlBombError, match="document 2"):
        load_yaml_documents("a: 1\n---\n" + LAUGHS.replace("  l", "l"), max_nodes=1000)


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big one.yaml"
    path.write_text(EXAMPLE.replace("metadata:\n", "metadata:\n  annotations:\n    big: '" + "x" * MAX_YAML_BYTES + "'\n"))
    with pytest.raises(SpecError) as info:
        load_experiment_file(path)
    assert info.value.errors[0].path == "file" and str(MAX_YAML_BYTES) in info.value.errors[0].allowed


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"# only a comment\n---\n", "is empty"),
        (b"\xff\xfeapiVersion: x\n", "is not UTF-8 text (byte 0"),
        (bytes(range(256)) * 4, "is not UTF-8 text"),
    ],
)
def test_empty_and_binary_files_name_the_problem(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "exp.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_experiment_file(path)
    assert expected in info.value.lines()[0]


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.encode())
    assert load_experiment_file(path).name == "random-hpo"


def test_a_megabyte_value_gives_a_short_error_line() -> None:
    text = EXAMPLE.replace("name: random-hpo", "name: " + "a" * 1_000_000)
    with pytest.raises(SpecError) as info:
        load_experiment_text(text)
    (line,) = info.value.lines()
    assert line.startswith("metadata.name: 'aaaa") and len(line) < 1500
    assert "more characters" in line


def test_field_error_clips_each_part_but_keeps_short_ones() -> None:
    assert str(FieldError("spec.x", "ok", "fine")) == "spec.x: 'ok' — fine"
    long = str(FieldError("spec.x", "v" * 10_000, "a, " * 10_000))
    assert len(long) < 1500 and long.count("more characters") == 2


@pytest.mark.parametrize("containers", ["[]", "null", "'abc'"])
def test_a_job_without_containers_is_one_error_not_three(containers: str) -> None:
    # Before: each trialParameter was also reported "never used", pointing the user elsewhere.
    text = EXAMPLE.replace("            containers:\n", f"            containers: {containers}\n            unused:\n")
    with pytest.raises(SpecError) as info:
        load_experiment_text(text)
    assert info.value.paths == ["spec.trialTemplate.trialSpec.spec.template.spec.containers"]


def test_a_job_with_several_containers_is_fine() -> None:
    text = EXAMPLE.replace("            containers:\n",
                           "            containers:\n              - {name: sidecar, image: busybox}\n")
    exp = load_experiment_text(text)
    assert exp.spec.trial_template is not None


def test_thousands_of_parameters_and_references_are_checked_in_linear_time() -> None:
    # Before: each bad reference built the list of every parameter name into its message
    # (20,000 x 20,000 names) and searched a list: minutes. Now each message lists 20 names.
    data = yaml.safe_load(EXAMPLE)
    data["spec"]["parameters"] += [{"name": f"p{i}", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "5"}}
                                   for i in range(20_000)]
    data["spec"]["trialTemplate"]["trialParameters"] += [{"name": f"t{i}", "reference": f"q{i}"} for i in range(20_000)]
    start = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_experiment_dict(data)
    assert time.monotonic() - start < 30
    references = [e for e in info.value.errors if e.path.endswith(".reference")]
    assert len(references) == 20_000
    assert all(len(e.allowed) < 400 for e in references) and "… (19982 more)" in references[0].allowed


def test_thousands_of_broken_parameters_do_not_make_the_other_rules_quadratic() -> None:
    # Before: every rule error was compared with every broken part: 20,000 of each ran > 10 minutes.
    data = yaml.safe_load(EXAMPLE)
    data["spec"]["parameters"] += [{"name": f"p{i}", "parameterType": "bogus", "feasibleSpace": {"min": "1", "max": "5"}}
                                   for i in range(20_000)]
    data["spec"]["trialTemplate"]["trialParameters"] += [{"name": "x", "reference": "x"} for _ in range(20_000)]
    start = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_experiment_dict(data)
    assert time.monotonic() - start < 30
    paths = info.value.paths
    assert paths[0] == "spec.parameters[2].parameterType" and sum(p.endswith(".parameterType") for p in paths) == 20_000
    assert sum(p.startswith("spec.trialTemplate.trialParameters") for p in paths) == 20_000
