"""`kubenas validate` on random hostile YAML: exit 0 or 2, never a traceback, one bounded line per
error, each naming where. Hypothesis drives the command in process (fast); a few known cases
run as real subprocesses, as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kubenas_cli.app import app
from kubenas.experiment_errors import MAX_ERROR_LINES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {name: (ROOT / "examples" / f"{name}.yaml").read_text() for name in ("random-hpo", "grid-hpo", "enas-digits")}
# Path 300 + value 200 + allowed 600 characters, each clipped with "… (N more characters)".
MAX_LINE_CHARS = 1400
LOCATION = re.compile(r"line \d+, column \d+")

SCALARS = [
    "2024-01-02", "2001-13-45", "2002-12-14t21:59:43.10-05:00", "~", "null", "yes", "No", "off", "=", "<<",
    ".inf", "-.Inf", ".nan", "0x1F", "0o17", "1_000", "1:30", "-0", "1e5", "1.0e+999", "12", "-3", "0.5", '""', "''",
    "!!bool maybe", "!!timestamp abc", "!!int abc", "!!float x", "!!null x", "!!binary aGk=", "!foo 3", "!!str 12",
    "!!int '12'", "!!python/name:os.system", "*nowhere", '"\\e]0;title\\a"', '"\\r\\e[2K"', '"\\u202e"', "ü", "日本語",
    "'a b'", '"${trialParameters.x}"', "9" * 5000, "0x" + "f" * 300, "Job", "batch/v1", "random", "grid", "enas",
    "minimize", "maximize", "categorical", "double", "int", "[unclosed", "{a: 1", "a: b: c", "- x",
]
# For the fields that hold numbers (counts, bounds, steps, sizes), as YAML numbers and as Katib's quoted text.
NUMBERS = ["0", "-1", "1e-320", "1e400", "nan", "-0", "0x10", "1_0", "2147483648", "9" * 310, "-" + "9" * 4000,
           "9" * 5000, "1.7976931348623157e308", "5e-324", "3.0", "1e16"]
numbers = st.one_of(st.sampled_from(NUMBERS), st.integers(-(10**400), 10**400).map(str)).flatmap(
    lambda n: st.sampled_from([n, f'"{n}"']))
KEYS = [
    "name", "value", "kind", "spec", "parameters", "maxTrialCount", "parallelTrialCount", "algorithmName",
    "numLayers", "list", "min", "max", "image", "trialSpec", "1", "2024-01-01", "~", "true", "<<", '"a.b/c"',
    '"\\e[31m"', "'a: b'", "ü", "[a]", "!!int 3", "!!binary aGk=", '":smile:"', '"[bold]x[/]"',
]

scalars = st.one_of(
    st.sampled_from(SCALARS),
    st.integers(-(10**30), 10**30).map(str),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).map(lambda s: json.dumps(s, ensure_ascii=False)),
)
keys = st.one_of(st.sampled_from(KEYS), st.text("abcXYZ-_./ 0", min_size=1, max_size=6).map(json.dumps))
deep = st.integers(90, 400).flatmap(lambda n: st.sampled_from(["{a: " * n + "1" + "}" * n, "[" * n + "]" * n]))
trees = st.recursive(
    st.one_of(scalars, st.just("*a")),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(keys, kids), max_size=4).map(lambda kvs: "{" + ", ".join(f"{k}: {v}" for k, v in kvs) + "}"),
        st.tuples(st.sampled_from(["!!map ", "!!seq ", "!!set ", "!!omap ", "!!str "]), kids).map("".join),
    ),
    max_leaves=12,
)
values = st.one_of(trees, trees.map(lambda v: f"&a {v}"), deep)

VALUE_LINE = re.compile(r"^(\s*(?:- )?[A-Za-z]+: )(.+)$")
NUMERIC_LINE = re.compile(r'^(\s*(?:- )?(?:[A-Za-z]+: )?)"?-?[0-9][0-9.]*"?$')


@st.composite
def hostile_documents(draw: st.DrawFn) -> str:
    """An example Experiment with 1-3 values replaced or keys inserted (often in the free-form
    trialSpec, where anything plain is allowed); sometimes a document of its own."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(values, st.tuples(keys, values).map(lambda kv: f"{kv[0]}: {kv[1]}\n")))
    lines = EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))].splitlines()
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["replace", "insert", "trialSpec", "number"]))
        i = draw(st.integers(0, len(lines) - 1))
        match = VALUE_LINE.match(lines[i])
        numeric = [j for j, line in enumerate(lines) if NUMERIC_LINE.match(line)]
        if where == "number" and numeric:
            j = draw(st.sampled_from(numeric))
            lines[j] = NUMERIC_LINE.sub(lambda m: m.group(1) + draw(numbers), lines[j])
        elif where == "trialSpec":
            at = lines.index("    trialSpec:")
            lines.insert(at + 1, f"      {draw(st.sampled_from(['x', 'extra', 'data', 'labels']))}{at}{i}: {draw(values)}")
        elif where == "replace" and match:
            lines[i] = match.group(1) + draw(values)
        else:
            indent = len(lines[i]) - len(lines[i].lstrip(" -"))
            lines.insert(i + 1, " " * indent + f"{draw(keys)}: {draw(values)}")
    return "\n".join(lines) + "\n"


def check_output(code: int, stdout: str, stderr: str, file: str) -> None:
    """The property: exit 0 with one ok line, or exit 2 with 1..MAX_ERROR_LINES+1 distinct, located lines."""
    assert code in (0, 2), (code, stdout[-2000:], stderr[-2000:])
    assert "Traceback" not in stdout + stderr
    if code == 0:
        assert stdout.startswith("ok ") and stderr == ""
        return
    lines = stderr.splitlines()
    assert 1 <= len(lines) <= MAX_ERROR_LINES + 1 and len(set(lines)) == len(lines), stderr[-2000:]
    for line in lines:
        assert line.startswith(f"{file}: ") and line.isprintable(), line
        assert len(line) <= len(file) + 2 + MAX_LINE_CHARS, line
        where, sep, rest = line[len(file) + 2:].partition(": ")
        assert sep and " — " in rest, line
        assert where and not where[0].isspace() and not where.startswith(("Error", "error")), line
        if where.startswith("line "):
            assert LOCATION.fullmatch(where), line


runner = CliRunner()


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(text=hostile_documents())
def test_validate_on_random_hostile_yaml_exits_0_or_2_with_located_lines(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)], catch_exceptions=False)
    check_output(result.exit_code, result.stdout, result.stderr, str(path))


def _with(example: str, old: str, new: str) -> str:
    assert old in EXAMPLES[example]
    return EXAMPLES[example].replace(old, new)


# The shapes issue 14 reported escaping as tracebacks, each as a real process; (text, expected in stderr).
KNOWN = {
    "date-in-trial-spec": (_with("random-hpo", "image: kubenas/trainer:latest", "image: 2024-01-02"), None),
    "date-as-count": (_with("random-hpo", "maxTrialCount: 12", "maxTrialCount: 2001-13-45"),
                      "spec.maxTrialCount: '2001-13-45' — input should be a valid integer"),
    "deep-nesting": (_with("random-hpo", "      kind: Job\n", "      kind: Job\n      x: " + "{a: " * 250 + "1" + "}" * 250 + "\n"),
                     "nesting deeper than 100 levels"),
    "big-integer": (_with("random-hpo", "maxTrialCount: 12", "maxTrialCount: " + "7" * 5000),
                    "an integer written with more than 100 characters is refused"),
    "odd-tags": (_with("random-hpo", "maxTrialCount: 12", "maxTrialCount: !!bool maybe\n  maxFailedTrialCount: !!map [1]")
                 .replace("  maxFailedTrialCount: 3\n", ""), "spec.maxFailedTrialCount: '!!map' — tag !!map cannot be used on a list"),
    "non-text-keys": (_with("random-hpo", "maxTrialCount: 12", "maxTrialCount: 12\n  1: x\n  2024-01-01: y"),
                      "spec['2024-01-01']: 'y' — unknown field"),
    "enas-space": (_with("enas-digits", "      inputSizes:\n        - 8\n        - 8\n        - 1\n", ""),
                   "spec.nasConfig.graphConfig.inputSizes: [] — required by enas"),
    "control-character": (_with("random-hpo", "name: random-hpo", "name: random\x01hpo"),
                          "line 8, column 15: 'name: random\\x01hpo' — is not valid YAML: control characters are not allowed"),
}


@pytest.mark.parametrize("case", sorted(KNOWN))
def test_validate_process_on_known_hostile_files(tmp_path: Path, case: str) -> None:
    text, expected = KNOWN[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "kubenas", "validate", str(path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    check_output(done.returncode, done.stdout, done.stderr, str(path))
    assert done.returncode == (0 if expected is None else 2)
    if expected is not None:
        assert expected in done.stderr, done.stderr


def test_each_known_case_gives_one_line_per_problem(tmp_path: Path) -> None:
    counts = {}
    for case, (text, _) in KNOWN.items():
        path = tmp_path / f"{case}.yaml"
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(app, ["validate", str(path)])
        counts[case] = len(result.stderr.splitlines())
    assert counts == {"date-in-trial-spec": 0, "date-as-count": 1, "deep-nesting": 1, "big-integer": 1,
                      "odd-tags": 2, "non-text-keys": 2, "enas-space": 1, "control-character": 1}


def test_validate_grid_with_200_layers_names_nas_config(tmp_path: Path) -> None:
    path = tmp_path / "grid200.yaml"
    path.write_text(_with("enas-digits", "algorithmName: enas", "algorithmName: grid").replace("numLayers: 6", "numLayers: 200"))
    result = runner.invoke(app, ["validate", str(path)], catch_exceptions=False)
    check_output(result.exit_code, result.stdout, result.stderr, str(path))
    assert result.exit_code == 2 and "spec.nasConfig" in result.stderr


def test_keys_are_printed_as_written_not_as_markup_or_emoji(tmp_path: Path) -> None:
    path = tmp_path / "markup.yaml"
    path.write_text(_with("random-hpo", "maxTrialCount: 12", 'maxTrialCount: 12\n  ":smile:": x\n  "[bold]b[/]": y'))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "spec[':smile:']: 'x'" in result.stderr and "spec['[bold]b[/]']: 'y'" in result.stderr
