"""The katib-config shaped ConfigMap: both Katib generations parse; bad entries name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controller.kube.config import (
    DEFAULT_MOUNT_PATH,
    ConfigError,
    ControllerConfig,
    parse_config_map,
)

ROOT = Path(__file__).resolve().parents[2]

KATIB_CONFIG = """
apiVersion: config.kubeflow.org/v1beta1
kind: KatibConfig
init:
  controller:
    dbManagerAddress: db.example:6789
runtime:
  suggestions:
    - algorithmName: enas
      image: ghcr.io/example/kubenas-suggestion:1
      imagePullPolicy: Always
      volumeMountPath: /state
      resources: {limits: {memory: 1Gi}}
    - algorithmName: random
      image: ghcr.io/example/kubenas-suggestion:1
"""


def test_current_katib_shape() -> None:
    config = parse_config_map({"katib-config.yaml": KATIB_CONFIG})
    assert config.db_manager_address == "db.example:6789"
    enas = config.suggestion("enas")
    assert (enas.image, enas.image_pull_policy, enas.volume_mount_path) == (
        "ghcr.io/example/kubenas-suggestion:1", "Always", "/state")
    assert enas.resources == {"limits": {"memory": "1Gi"}}
    assert config.suggestion("random").volume_mount_path == DEFAULT_MOUNT_PATH


def test_legacy_json_shape() -> None:
    config = parse_config_map({"suggestion": json.dumps({"darts": {"image": "img:2", "serviceAccountName": "sa"}})})
    assert config.suggestion("darts").image == "img:2"
    assert config.suggestion("darts").service_account_name == "sa"


def test_unknown_algorithm_names_the_configured_ones() -> None:
    config = parse_config_map({"katib-config.yaml": KATIB_CONFIG})
    with pytest.raises(ConfigError, match=r"'tpe'.*configured: enas, random"):
        config.suggestion("tpe")


@pytest.mark.parametrize("data, field", [
    ({}, "data"),
    ({"katib-config.yaml": "runtime: {suggestions: [{algorithmName: enas}]}"}, "runtime.suggestions[0].image"),
    ({"katib-config.yaml": "runtime: {suggestions: [{image: x}]}"}, "runtime.suggestions[0].algorithmName"),
    ({"katib-config.yaml": "runtime: {suggestions: [{algorithmName: a, image: x, imagePullPolicy: Sometimes}]}"},
     "runtime.suggestions[0].imagePullPolicy"),
    ({"katib-config.yaml": "runtime: {suggestions: [{algorithmName: a, image: x}, {algorithmName: a, image: y}]}"},
     "runtime.suggestions[1].algorithmName"),
    ({"katib-config.yaml": "runtime: {suggestions: [{algorithmName: a, image: x, volumeMountPath: rel}]}"},
     "runtime.suggestions[0].volumeMountPath"),
    ({"suggestion": "{not json"}, "suggestion"),
    ({"katib-config.yaml": "runtime: {earlyStoppings: [{algorithmName: medianstop}]}"},
     "runtime.earlyStoppings[0].image"),
    ({"katib-config.yaml": "runtime: {earlyStoppings: {medianstop: x}}"}, "runtime.earlyStoppings"),
    ({"suggestion": "{}", "early-stopping": "[1]"}, "early-stopping"),
])
def test_bad_config_names_the_field(data: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_map(data)
    assert info.value.field == field
    assert field in str(info.value)


def _shipped() -> ControllerConfig:
    docs = list(yaml.safe_load_all((ROOT / "manifests" / "base" / "katib-config.yaml").read_text()))
    return parse_config_map(docs[0]["data"])


def test_shipped_config_map_configures_exactly_the_registered_algorithms() -> None:
    from suggestion.algorithms.registry import ALGORITHMS

    config = _shipped()
    # A missing entry fails every experiment of that algorithm ("no image configured"); an entry
    # for an unknown name would deploy a server that exits at once (CrashLoopBackOff).
    assert sorted(config.suggestions) == sorted(ALGORITHMS)
    raw = yaml.safe_load(yaml.safe_load((ROOT / "manifests" / "base" / "katib-config.yaml").read_text())
                         ["data"]["katib-config.yaml"])
    listed = [entry["algorithmName"] for entry in raw["runtime"]["suggestions"]]
    assert len(listed) == len(set(listed)), f"listed more than once: {sorted(n for n in listed if listed.count(n) > 1)}"
    assert {c.image for c in config.suggestions.values()} == {"kubenas/suggestion:0.1.0"}
    assert config.db_manager_address.startswith("kubenas-db-manager.kubenas-system")


def test_shipped_config_map_configures_exactly_the_registered_early_stopping_algorithms() -> None:
    from suggestion.early_stopping.registry import EARLY_STOPPING

    config = _shipped()
    assert sorted(config.early_stoppings) == sorted(EARLY_STOPPING)
    for name in EARLY_STOPPING:
        assert config.early_stopping(name).image == config.suggestions["random"].image


def test_early_stopping_entries_in_both_shapes() -> None:
    text = KATIB_CONFIG + "  earlyStoppings:\n    - {algorithmName: medianstop, image: img:3}\n"
    assert parse_config_map({"katib-config.yaml": text}).early_stopping("medianstop").image == "img:3"
    legacy = parse_config_map({"suggestion": json.dumps({"random": {"image": "i"}}),
                               "early-stopping": json.dumps({"medianstop": {"image": "img:4"}})})
    assert legacy.early_stopping("medianstop").image == "img:4"
    with pytest.raises(ConfigError, match=r"'medianstop'.*configured: none"):
        parse_config_map({"katib-config.yaml": KATIB_CONFIG}).early_stopping("medianstop")
