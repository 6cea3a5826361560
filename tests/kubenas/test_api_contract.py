"""The wire contract: generated code is current, and the descriptor is exactly Katib's v1beta1 API.

The expected schema below is written out from DESIGN.md "Wire contract" (Katib's
api.v1.beta1 proto), not read from our own .proto, so a drift in either fails here.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from kubenas.api.v1beta1 import api_pb2

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "kubenas" / "api" / "v1beta1"

# message -> field -> (number, type). Types: scalar name, message/enum name relative to the
# package, "repeated X" or "map<K,V>".
MESSAGES: dict[str, dict[str, tuple[int, str]]] = {
    "Experiment": {"name": (1, "string"), "spec": (2, "ExperimentSpec")},
    "ExperimentSpec": {
        "parameter_specs": (1, "ExperimentSpec.ParameterSpecs"),
        "objective": (2, "ObjectiveSpec"),
        "algorithm": (3, "AlgorithmSpec"),
        "early_stopping": (4, "EarlyStoppingSpec"),
        "parallel_trial_count": (5, "int32"),
        "max_trial_count": (6, "int32"),
        "nas_config": (7, "NasConfig"),
    },
    "ExperimentSpec.ParameterSpecs": {"parameters": (1, "repeated ParameterSpec")},
    "ParameterSpec": {"name": (1, "string"), "parameter_type": (2, "enum ParameterType"), "feasible_space": (3, "FeasibleSpace")},
    "FeasibleSpace": {
        "max": (1, "string"),
        "min": (2, "string"),
        "list": (3, "repeated string"),
        "step": (4, "string"),
        "distribution": (5, "enum Distribution"),
    },
    "ObjectiveSpec": {
        "type": (1, "enum ObjectiveType"),
        "goal": (2, "double"),
        "objective_metric_name": (3, "string"),
        "additional_metric_names": (4, "repeated string"),
    },
    "AlgorithmSpec": {"algorithm_name": (1, "string"), "algorithm_settings": (2, "repeated AlgorithmSetting")},
    "AlgorithmSetting": {"name": (1, "string"), "value": (2, "string")},
    "EarlyStoppingSpec": {"algorithm_name": (1, "string"), "algorithm_settings": (2, "repeated EarlyStoppingSetting")},
    "EarlyStoppingSetting": {"name": (1, "string"), "value": (2, "string")},
    "NasConfig": {"graph_config": (1, "GraphConfig"), "operations": (2, "NasConfig.Operations")},
    "NasConfig.Operations": {"operation": (1, "repeated Operation")},
    "GraphConfig": {"num_layers": (1, "int32"), "input_sizes": (2, "repeated int32"), "output_sizes": (3, "repeated int32")},
    "Operation": {"operation_type": (1, "string"), "parameter_specs": (2, "Operation.ParameterSpecs")},
    "Operation.ParameterSpecs": {"parameters": (1, "repeated ParameterSpec")},
    "Trial": {"name": (1, "string"), "spec": (2, "TrialSpec"), "status": (3, "TrialStatus")},
    "TrialSpec": {
        "objective": (2, "ObjectiveSpec"),
        "parameter_assignments": (3, "TrialSpec.ParameterAssignments"),
        "labels": (4, "map<string,string>"),
    },
    "TrialSpec.ParameterAssignments": {"assignments": (1, "repeated ParameterAssignment")},
    "ParameterAssignment": {"name": (1, "string"), "value": (2, "string")},
    "TrialStatus": {
        "start_time": (1, "string"),
        "completion_time": (2, "string"),
        "condition": (3, "enum TrialStatus.TrialConditionType"),
        "observation": (4, "Observation"),
    },
    "Observation": {"metrics": (1, "repeated Metric")},
    "Metric": {"name": (1, "string"), "value": (2, "string")},
    "ReportObservationLogRequest": {"trial_name": (1, "string"), "observation_log": (2, "ObservationLog")},
    "ReportObservationLogReply": {},
    "ObservationLog": {"metric_logs": (1, "repeated MetricLog")},
    "MetricLog": {"time_stamp": (1, "string"), "metric": (2, "Metric")},
    "GetObservationLogRequest": {
        "trial_name": (1, "string"),
        "metric_name": (2, "string"),
        "start_time": (3, "string"),
        "end_time": (4, "string"),
    },
    "GetObservationLogReply": {"observation_log": (1, "ObservationLog")},
    "DeleteObservationLogRequest": {"trial_name": (1, "string")},
    "DeleteObservationLogReply": {},
    "GetSuggestionsRequest": {
        "experiment": (1, "Experiment"),
        "trials": (2, "repeated Trial"),
        "current_request_number": (4, "int32"),
        "total_request_number": (5, "int32"),
    },
    "GetSuggestionsReply": {
        "parameter_assignments": (1, "repeated GetSuggestionsReply.ParameterAssignments"),
        "algorithm": (2, "AlgorithmSpec"),
        "early_stopping_rules": (3, "repeated EarlyStoppingRule"),
    },
    "GetSuggestionsReply.ParameterAssignments": {
        "assignments": (1, "repeated ParameterAssignment"),
        "trial_name": (2, "string"),
        "labels": (3, "map<string,string>"),
    },
    "ValidateAlgorithmSettingsRequest": {"experiment": (1, "Experiment")},
    "ValidateAlgorithmSettingsReply": {},
    "GetEarlyStoppingRulesRequest": {
        "experiment": (1, "Experiment"),
        "trials": (2, "repeated Trial"),
        "db_manager_address": (3, "string"),
    },
    "GetEarlyStoppingRulesReply": {"early_stopping_rules": (1, "repeated EarlyStoppingRule")},
    "EarlyStoppingRule": {
        "name": (1, "string"),
        "value": (2, "string"),
        "comparison": (3, "enum ComparisonType"),
        "start_step": (4, "int32"),
    },
    "ValidateEarlyStoppingSettingsRequest": {"early_stopping": (1, "EarlyStoppingSpec")},
    "ValidateEarlyStoppingSettingsReply": {},
    "SetTrialStatusRequest": {"trial_name": (1, "string")},
    "SetTrialStatusReply": {},
}

ENUMS: dict[str, list[tuple[str, int]]] = {
    "ParameterType": [("UNKNOWN_TYPE", 0), ("DOUBLE", 1), ("INT", 2), ("DISCRETE", 3), ("CATEGORICAL", 4)],
    "Distribution": [("DISTRIBUTION_UNSPECIFIED", 0), ("UNIFORM", 1), ("LOG_UNIFORM", 2), ("NORMAL", 3), ("LOG_NORMAL", 4)],
    "ObjectiveType": [("UNKNOWN", 0), ("MINIMIZE", 1), ("MAXIMIZE", 2)],
    "ComparisonType": [("UNKNOWN_COMPARISON", 0), ("EQUAL", 1), ("LESS", 2), ("GREATER", 3)],
    "TrialStatus.TrialConditionType": [
        ("CREATED", 0), ("RUNNING", 1), ("SUCCEEDED", 2), ("KILLED", 3), ("FAILED", 4),
        ("METRICSUNAVAILABLE", 5), ("EARLYSTOPPED", 6), ("UNKNOWN", 7),
    ],
}

SERVICES: dict[str, dict[str, tuple[str, str]]] = {
    "Suggestion": {
        "GetSuggestions": ("GetSuggestionsRequest", "GetSuggestionsReply"),
        "ValidateAlgorithmSettings": ("ValidateAlgorithmSettingsRequest", "ValidateAlgorithmSettingsReply"),
    },
    "DBManager": {
        "ReportObservationLog": ("ReportObservationLogRequest", "ReportObservationLogReply"),
        "GetObservationLog": ("GetObservationLogRequest", "GetObservationLogReply"),
        "DeleteObservationLog": ("DeleteObservationLogRequest", "DeleteObservationLogReply"),
    },
    "EarlyStopping": {
        "GetEarlyStoppingRules": ("GetEarlyStoppingRulesRequest", "GetEarlyStoppingRulesReply"),
        "SetTrialStatus": ("SetTrialStatusRequest", "SetTrialStatusReply"),
        "ValidateEarlyStoppingSettings": ("ValidateEarlyStoppingSettingsRequest", "ValidateEarlyStoppingSettingsReply"),
    },
}

PACKAGE = "api.v1.beta1"
SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_DOUBLE: "double",
}


def _local(full_name: str) -> str:
    assert full_name.startswith(PACKAGE + "."), full_name
    return full_name[len(PACKAGE) + 1:]


def _field_type(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        key, value = (_field_type(f) for f in field.message_type.fields)
        return f"map<{key},{value}>"
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = _local(field.message_type.full_name)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        name = "enum " + _local(field.enum_type.full_name)
    else:
        name = SCALARS.get(field.type, f"type#{field.type}")
    return f"repeated {name}" if field.is_repeated else name


def _all_messages() -> dict[str, Descriptor]:
    found: dict[str, Descriptor] = {}

    def walk(message: Descriptor) -> None:
        if message.GetOptions().map_entry:
            return
        found[_local(message.full_name)] = message
        for nested in message.nested_types:
            walk(nested)

    for message in api_pb2.DESCRIPTOR.message_types_by_name.values():
        walk(message)
    return found


def test_package_is_katibs() -> None:
    assert api_pb2.DESCRIPTOR.package == PACKAGE
    assert api_pb2.DESCRIPTOR.name == "kubenas/api/v1beta1/api.proto"


def test_message_set_is_exact() -> None:
    assert sorted(_all_messages()) == sorted(MESSAGES)


@pytest.mark.parametrize("message", sorted(MESSAGES))
def test_message_fields_match_katib(message: str) -> None:
    descriptor = _all_messages()[message]
    actual = {f.name: (f.number, _field_type(f)) for f in descriptor.fields}
    assert actual == MESSAGES[message]


def test_enums_match_katib() -> None:
    actual = {_local(e.full_name): [(v.name, v.number) for v in e.values] for e in api_pb2.DESCRIPTOR.enum_types_by_name.values()}
    for message in _all_messages().values():
        for enum in message.enum_types:
            actual[_local(enum.full_name)] = [(v.name, v.number) for v in enum.values]
    assert actual == ENUMS


def test_services_match_katib() -> None:
    actual = {
        name: {m.name: (_local(m.input_type.full_name), _local(m.output_type.full_name)) for m in service.methods}
        for name, service in api_pb2.DESCRIPTOR.services_by_name.items()
    }
    assert actual == SERVICES


def test_generated_stubs_expose_every_service() -> None:
    from kubenas.api.v1beta1 import api_pb2_grpc

    for service in SERVICES:
        assert hasattr(api_pb2_grpc, f"{service}Stub")
        assert hasattr(api_pb2_grpc, f"{service}Servicer")
        assert hasattr(api_pb2_grpc, f"add_{service}Servicer_to_server")


def test_committed_code_is_what_the_generator_writes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    fresh = tmp_path / "kubenas" / "api" / "v1beta1"
    names = sorted(p.name for p in fresh.iterdir() if p.is_file())
    assert names == ["api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py"]
    _, mismatch, errors = filecmp.cmpfiles(fresh, GENERATED, names, shallow=False)
    assert not mismatch and not errors, f"regenerate with `python scripts/gen_proto.py`: {mismatch or errors} differ"
