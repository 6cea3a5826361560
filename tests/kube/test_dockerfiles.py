"""The two Dockerfiles, checked statically (no Docker engine here): they parse, pin their
bases, run as non-root, call installed entry points, and install extras that cover every
third-party module their commands import."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
KNOWN = {"FROM", "RUN", "COPY", "ENV", "ARG", "USER", "WORKDIR", "ENTRYPOINT", "CMD", "EXPOSE", "LABEL"}


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


IMAGES = {
    "Dockerfile.suggestion": {"extras": {"suggestion", "controller", "dashboard"}, "entry": "kubenas",
                              "modules": ["suggestion.service", "controller.kube.operator", "controller.dbmanager",
                                          "controller.store_sqlite", "kubenas_cli.app", "dashboard.server",
                                          "dashboard.cluster_source"]},
    "Dockerfile.trainer": {"extras": {"trainer"}, "entry": "kubenas-train", "modules": ["trainer.cli"]},
}


@pytest.mark.parametrize("name", IMAGES)
def test_parses_and_runs_non_root(name: str) -> None:
    steps = instructions(ROOT / name)
    assert {w for w, _ in steps} <= KNOWN
    final_stage = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM"):]
    users = [rest for w, rest in final_stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    args = {rest.split("=", 1)[0]: rest.split("=", 1)[1] for w, rest in steps if w == "ARG" and "=" in rest}
    for word, rest in steps:
        if word == "FROM":
            image = rest.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            assert ":" in image and not image.endswith(":latest"), image


@pytest.mark.parametrize("name", IMAGES)
def test_entry_point_is_an_installed_script(name: str) -> None:
    steps = instructions(ROOT / name)
    entry = json.loads(next(rest for w, rest in steps if w == "ENTRYPOINT"))
    assert entry[0] == IMAGES[name]["entry"] and entry[0] in PYPROJECT["project"]["scripts"]
    assert (Path(sys.executable).parent / entry[0]).exists()


@pytest.mark.parametrize("name", IMAGES)
def test_installs_the_right_extras_and_copies_existing_sources(name: str) -> None:
    steps = instructions(ROOT / name)
    installs = " ".join(rest for w, rest in steps if w == "RUN" and "pip install" in rest)
    extras = set().union(*(set(m.split(",")) for m in re.findall(r'src\[([\w,]+)\]', installs)))
    assert extras == IMAGES[name]["extras"]
    for word, rest in steps:
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                if source != "README.md":  # written by the lead into the repo root
                    assert (ROOT / source).exists(), source


def test_trainer_base_carries_the_pinned_torch() -> None:
    steps = instructions(ROOT / "Dockerfile.trainer")
    base = next(rest for w, rest in steps if w == "ARG" and rest.startswith("TORCH_IMAGE="))
    pin = next(d for d in PYPROJECT["project"]["optional-dependencies"]["trainer"] if d.startswith("torch=="))
    assert base.split(":")[1].startswith(pin.split("==")[1] + "-cuda")


_IMPORTS = """
import importlib, json, sys
for blocked in json.loads(sys.argv[1]):
    sys.modules[blocked] = None  # what the image lacks: importing it raises ImportError
for name in sys.argv[2:]:
    importlib.import_module(name)
"""


def _requirement_names(specs: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~ ;]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def _closure(names: set[str]) -> set[str]:
    """The distributions pip installs for `names` (their non-extra requirements, recursively)."""
    import importlib.metadata as md

    closure, todo = set(), list(names)
    while todo:
        dist = todo.pop()
        if dist in closure:
            continue
        closure.add(dist)
        try:
            requires = md.requires(dist) or []
        except md.PackageNotFoundError:
            continue
        todo.extend(_requirement_names([r for r in requires if "extra ==" not in r]))
    return closure


@pytest.mark.parametrize("name", IMAGES)
def test_extras_cover_every_import(name: str) -> None:
    """Import the image's commands with every distribution the image would lack made
    unimportable: an optional import (try/except ImportError) passes, a required one fails."""
    import importlib.metadata as md

    project = PYPROJECT["project"]
    allowed = _requirement_names(project["dependencies"])
    for extra in IMAGES[name]["extras"]:
        allowed |= _requirement_names(project["optional-dependencies"][extra])
    installed = _closure(allowed)
    ours = {"kubenas", "kubenas_cli", "kubenas_bench", "suggestion", "controller", "trainer", "dashboard", "tests"}
    blocked = sorted(module for module, dists in md.packages_distributions().items()
                     if module not in ours and not {d.lower().replace("_", "-") for d in dists} & installed)
    done = subprocess.run([sys.executable, "-c", _IMPORTS,  json.dumps(blocked), *IMAGES[name]["modules"]],
                          cwd=ROOT, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{name}: a command imports what its extras do not install:\n{done.stderr[-2000:]}"
    assert "torch" in blocked or "torch" in {d for d in installed}


def test_dockerignore_keeps_the_sources() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("pyproject.toml", "kubenas/", "kubenas_cli/", "kubenas_bench/", "suggestion/", "controller/", "trainer/", "dashboard/"):
        assert f"!{needed}" in lines
