"""Experiment YAML becomes plain JSON-like data, or one located error per problem.

One test class per kind of input that used to escape as a traceback (issue 14, item 2):
timestamps, deep nesting, huge integers, tags, non-text keys, control characters.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from kubenas.experiment import SpecError, load_experiment_text
from kubenas.experiment_errors import MAX_ERROR_LINES, FieldError, format_path
from kubenas.experiment_yaml import (
    MAX_INT_CHARS,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    YamlDuplicateKeyError,
    YamlInputError,
    load_yaml_documents,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "random-hpo.yaml").read_text()
MAX_TRIALS_AT = "(line 20, column 18)"  # where `maxTrialCount: 12`'s value starts in the example


def with_max_trials(value: str) -> str:
    return EXAMPLE.replace("maxTrialCount: 12", f"maxTrialCount: {value}")


def with_trial_spec_key(line: str) -> str:
    return EXAMPLE.replace("      kind: Job\n", f"      kind: Job\n      {line}\n")


def errors_of(text: str) -> list[FieldError]:
    with pytest.raises(SpecError) as info:
        load_experiment_text(text, "exp.yaml")
    return info.value.errors


def _walk(value: Any) -> None:
    """Every value is JSON's: json.dumps must take the whole document without a default."""
    json.dumps(value, allow_nan=True)


def _plain_types(value: Any) -> set[type]:
    found = {type(value)}
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value)
        for v in value.values():
            found |= _plain_types(v)
    elif isinstance(value, list):
        for v in value:
            found |= _plain_types(v)
    return found


class TestTimestamps:
    def test_a_date_in_the_trial_spec_stays_its_text(self) -> None:
        exp = load_experiment_text(EXAMPLE.replace("image: kubenas/trainer:latest", "image: 2024-01-02"))
        assert exp.spec.trial_template is not None and exp.spec.trial_template.trial_spec is not None
        container = exp.spec.trial_template.trial_spec["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "2024-01-02"
        _walk(exp.to_dict())

    @pytest.mark.parametrize("value", ["2001-13-45", "2001-12-05", "2024-01-02T10:00:00Z", "!!timestamp 2024-01-02"])
    def test_a_date_as_a_count_is_one_error_naming_the_field(self, value: str) -> None:
        (error,) = errors_of(with_max_trials(value))
        assert error.path == "spec.maxTrialCount" and error.value == value.removeprefix("!!timestamp ")
        assert "integer" in error.allowed

    def test_dates_anywhere_load_as_text(self) -> None:
        (doc,) = load_yaml_documents("a: 2024-01-02\nb: [2001-13-45, 2002-02-02 10:00:00]\n2024-01-01: key\n")
        assert doc == {"a": "2024-01-02", "b": ["2001-13-45", "2002-02-02 10:00:00"], "2024-01-01": "key"}


class TestDepth:
    @pytest.mark.parametrize("style", ["flow", "block", "list"])
    def test_nesting_past_the_limit_is_one_short_error_at_its_path(self, style: str) -> None:
        n = 250
        deep = {"flow": "{a: " * n + "1" + "}" * n,
                "list": "[" * n + "]" * n,
                "block": "\n" + "".join("  " * (i + 4) + "a:\n" for i in range(n)) + "  " * (n + 4) + "b: 1"}[style]
        start = time.monotonic()
        (error,) = errors_of(EXAMPLE.replace("      kind: Job\n", f"      kind: Job\n      deep: {deep}\n"))
        assert time.monotonic() - start < 2
        assert error.path.startswith("spec.trialTemplate.trialSpec.deep")
        assert f"nesting deeper than {MAX_YAML_DEPTH} levels" in error.allowed and "(line " in error.allowed
        assert len(str(error)) < 1500

    def test_a_million_brackets_are_refused_at_once(self) -> None:
        # libyaml's scanner reads ahead and stops first, at its own limit of 1000 levels.
        start = time.monotonic()
        with pytest.raises(YamlInputError, match="nesting depth|nesting deeper") as info:
            load_yaml_documents("[" * 1_000_000)
        assert time.monotonic() - start < 2 and "\n" not in str(info.value)

    def test_nesting_up_to_the_limit_loads(self) -> None:
        depth = MAX_YAML_DEPTH
        (doc,) = load_yaml_documents("[" * depth + "]" * depth)
        for _ in range(depth - 1):
            (doc,) = doc
        assert doc == []


class TestSize:
    @pytest.mark.parametrize("text", ["---\n" * 1_000_000, "a: 1\n---\n" * 400_000])
    def test_a_million_documents_share_one_value_budget(self, text: str) -> None:
        # Before: every document had its own budget; a million empty ones took ~20 s to read.
        start = time.monotonic()
        (error,) = errors_of(text)
        assert time.monotonic() - start < 5
        assert error.path == "yaml" and f"past {MAX_YAML_NODES} YAML values" in error.allowed


class TestIntegers:
    @pytest.mark.parametrize("value", ["9" * 5000, "-" + "1" * 101, "0x" + "f" * 4000, "1_" * 60 + "1"])
    def test_an_integer_too_long_is_refused_with_its_path(self, value: str) -> None:
        (error,) = errors_of(with_max_trials(value))
        assert error.path == "spec.maxTrialCount" and MAX_TRIALS_AT in error.allowed
        assert f"more than {MAX_INT_CHARS} characters" in error.allowed
        assert len(str(error)) < 1500

    def test_long_but_allowed_integers_load_exactly(self) -> None:
        (doc,) = load_yaml_documents(f"a: {'9' * MAX_INT_CHARS}\nb: 0x1F\nc: 1_000\nd: '{'9' * 5000}'\n")
        assert doc == {"a": int("9" * MAX_INT_CHARS), "b": 31, "c": 1000, "d": "9" * 5000}

    def test_an_error_about_a_huge_computed_integer_still_prints(self) -> None:
        line = str(FieldError("spec.nasConfig", 7**20000, "too many"))
        assert line.startswith("spec.nasConfig: <an integer of about 16902 digits> — too many")


class TestTags:
    @pytest.mark.parametrize(("value", "reason"), [
        ("!!bool maybe", "is not a valid !!bool value"),
        ("!!timestamp abc", "is not a valid !!timestamp value"),
        ("!!int abc", "is not a valid !!int value"),
        ("!!float abc", "is not a valid !!float value"),
        ("!!null x", "is not a valid !!null value"),
        ("!!map [1, 2]", "tag !!map cannot be used on a list"),
        ("!!seq {a: 1}", "tag !!seq cannot be used on a mapping"),
        ("!!str [a]", "tag !!str cannot be used on a list"),
        ("!!binary aGVsbG8=", "tag !!binary is not supported"),
        ("!!seq 3", "tag !!seq cannot be used on a scalar"),
        ("!!set {a, b}", "tag !!set is not supported"),
        ("!!omap [a: 1]", "tag !!omap is not supported"),
        ("!foo 3", "tag !foo is not supported"),
        ("!!python/object:os.system x", "tag !!python/object:os.system is not supported"),
    ])
    def test_a_tag_that_does_not_fit_is_refused_at_its_field_and_line(self, value: str, reason: str) -> None:
        (error,) = errors_of(with_max_trials(value))
        assert error.path == "spec.maxTrialCount" and reason in error.allowed
        assert error.allowed.endswith(MAX_TRIALS_AT)

    @pytest.mark.parametrize(("value", "loaded"), [
        ("!!int '12'", 12), ("!!str 12", "12"), ("!!float 1", 1.0), ("!!bool yes", True), ("!!null ''", None),
        ("!!timestamp 2024-01-02", "2024-01-02"), ("!!seq [1]", [1]), ("!!map {a: 1}", {"a": 1}),
        ("=", "="), ("<<", "<<"), ("on", True), ("~", None), (".inf", float("inf")),
    ])
    def test_json_tags_that_fit_load_as_plain_values(self, value: str, loaded: Any) -> None:
        assert load_yaml_documents(f"a: {value}\n") == [{"a": loaded}]

    def test_merge_keys_still_merge(self) -> None:
        (doc,) = load_yaml_documents("base: &b {x: 1, y: 2}\nother: &o {z: 3}\nuse:\n  <<: [*b, *o]\n  y: 9\n")
        assert doc["use"] == {"x": 1, "y": 9, "z": 3}
        with pytest.raises(YamlInputError, match="merge key"):
            load_yaml_documents("a:\n  <<: 3\n")

    def test_an_undefined_alias_is_located(self) -> None:
        (error,) = errors_of(with_max_trials("*nowhere"))
        assert error.path == "spec.maxTrialCount" and "names no anchor" in error.allowed


class TestKeys:
    @pytest.mark.parametrize(("key", "path"), [
        ("1", "spec['1']"), ("2024-01-01", "spec['2024-01-01']"), ("~", "spec['~']"), ("true", "spec.true"),
        ("1.5", "spec['1.5']"),
    ])
    def test_a_scalar_key_is_its_text_and_reported_once(self, key: str, path: str) -> None:
        errors = errors_of(with_max_trials(f"12\n  {key}: x"))
        assert [e.path for e in errors] == [path]
        assert "unknown field; allowed here:" in errors[0].allowed

    def test_scalar_keys_in_a_free_form_trial_spec_are_text(self) -> None:
        exp = load_experiment_text(with_trial_spec_key("labels: {1: a, 2024-01-01: b, null: c, yes: d}"))
        assert exp.spec.trial_template is not None and exp.spec.trial_template.trial_spec is not None
        assert exp.spec.trial_template.trial_spec["labels"] == {"1": "a", "2024-01-01": "b", "null": "c", "yes": "d"}

    @pytest.mark.parametrize("entry", ["? [a]\n  : x", "? {a: 1}\n  : x", "a: &l [1]\n  *l : x"])
    def test_a_list_or_mapping_as_key_is_refused(self, entry: str) -> None:
        (error,) = errors_of(with_max_trials(f"12\n  {entry}"))
        assert error.path == "spec" and "as a mapping key is not supported: keys must be text" in error.allowed

    def test_an_alias_to_a_scalar_is_a_key_by_its_text(self) -> None:
        assert load_yaml_documents("a: &n 1\nb: {*n : x}\n") == [{"a": 1, "b": {"1": "x"}}]

    def test_a_duplicate_key_names_its_path_and_both_lines(self) -> None:
        with pytest.raises(YamlDuplicateKeyError) as info:
            load_yaml_documents("spec:\n  a: 1\n  b: 2\n  a: 3\n")
        assert info.value.path == ("spec", "a") and "given again at line 4 (first at line 2)" in str(info.value)
        assert str(info.value).startswith("spec.a at line 4, column 3: duplicate key 'a'")

    def test_the_loader_builds_only_json_types(self) -> None:
        text = ("a: [1, 1.5, true, null, x, 2024-01-01, 0x10, .nan]\n"
                "? 7\n: {2: b}\n")
        (doc,) = load_yaml_documents(text)
        assert _plain_types(doc) <= {dict, list, str, int, float, bool, type(None)}


class TestPaths:
    def test_format_path_quotes_keys_that_are_not_plain_names(self) -> None:
        assert format_path(("spec", "parameters", 1, "feasibleSpace", "max")) == "spec.parameters[1].feasibleSpace.max"
        assert format_path(("metadata", "labels", "training.kubeflow.org/job-role")) == \
            "metadata.labels['training.kubeflow.org/job-role']"
        assert format_path(("spec", "", "a b", "my-key")) == "spec['']['a b'].my-key"

    def test_control_characters_in_keys_and_messages_are_escaped(self) -> None:
        errors = errors_of(with_max_trials('12\n  "\\e]0;title\\a\\u202e": x'))
        (line,) = [str(e) for e in errors]
        assert line.isprintable() and "\\x1b]0;title\\x07\\u202e" in line

    def test_a_bad_character_is_located_on_one_line(self) -> None:
        (error,) = errors_of(EXAMPLE.replace("name: random-hpo", "name: ü\x01"))
        assert error.path == "line 8, column 10" and error.value == "name: ü\x01"
        assert "control characters are not allowed (#x0001)" in error.allowed and "\n" not in error.allowed

    def test_libyaml_problems_are_one_line(self) -> None:
        (error,) = errors_of("a: [" * 3 + "\n\tb")
        assert error.path.startswith("line ") and "\n" not in str(error)


class TestErrorLines:
    def test_every_yaml_problem_of_a_file_is_reported_at_once(self) -> None:
        text = with_max_trials("!!bool maybe\n  maxTrialCount: 3").replace("- name: x\n", "- name: x\n      name: y\n", 1)
        text = text.replace("image: kubenas/trainer:latest", "image: !!binary aGk=")
        errors = errors_of(text)
        assert [e.path for e in errors] == [
            "spec.maxTrialCount", "spec.maxTrialCount", "spec.parameters[0].name",
            "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].image"]
        assert "!!bool" in errors[0].allowed and "duplicate key" in errors[1].allowed and "!!binary" in errors[3].allowed


    def test_the_same_error_is_reported_once(self) -> None:
        same = FieldError("spec.x", 1, "no")
        assert SpecError([same, FieldError("spec.x", 1, "no"), FieldError("spec.y", 1, "no")]).lines() == \
            ["spec.x: 1 — no", "spec.y: 1 — no"]

    def test_thousands_of_errors_print_a_bounded_number_of_lines(self) -> None:
        lines = SpecError([FieldError(f"spec.p[{i}]", i, "no") for i in range(5000)]).lines()
        assert len(lines) == MAX_ERROR_LINES + 1
        assert lines[-1].startswith(f"(more errors): {5000 - MAX_ERROR_LINES} — not shown")
