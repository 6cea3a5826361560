"""Katib v1beta1 Experiment: YAML -> typed, defaulted, validated objects -> proto and domain.

    exp = load_experiment_file("random.yaml")      # raises SpecError listing every problem
    exp.search_space(), exp.objective(), exp.to_proto(), exp.to_dict()

The spec models live in `experiment_model`, the rules in `experiment_rules`; this module
loads, reports and converts. Algorithm names are not checked against any registry here
(the core imports nothing of ours): pass `extra_checks` to add such checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubenas import proto_convert
from kubenas.api.v1beta1 import api_pb2
from kubenas.experiment_errors import FieldError, SpecError, field_errors, format_path
from kubenas.experiment_model import (
    API_VERSION,
    DEFAULT_PARALLEL_TRIAL_COUNT,
    KIND,
    AlgorithmSetting,
    AlgorithmSpec,
    EarlyStoppingSpec,
    ExperimentSpec,
    ObjectiveSpec,
    ObjectMeta,
    apply_defaults,
)
from kubenas.experiment_rules import check_spec
from kubenas.experiment_yaml import MAX_YAML_BYTES, YamlInputError, load_yaml_documents, source_line
from kubenas.space.errors import SpaceError
from kubenas.space.parameters import ParameterSpec
from kubenas.space.search_space import SearchSpace
from kubenas.trials import Objective

__all__ = [
    "Experiment",
    "ExperimentSpec",
    "ExtraCheck",
    "FieldError",
    "SpecError",
    "load_experiment_dict",
    "load_experiment_file",
    "load_experiment_text",
]

ExtraCheck = Callable[["Experiment"], Iterable[FieldError]]


class Experiment(BaseModel):
    """A loaded Experiment resource with Katib's defaults applied. Immutable."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    api_version: str = Field(API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: ObjectMeta
    spec: ExperimentSpec
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """The namespace given in metadata, else "default"."""
        return self.metadata.namespace or "default"

    @property
    def algorithm_name(self) -> str:
        return self.spec.algorithm.algorithm_name if self.spec.algorithm else ""

    @property
    def is_nas(self) -> bool:
        return self.spec.nas_config is not None

    @property
    def parameters(self) -> list[ParameterSpec]:
        return list(self.spec.parameters)

    @property
    def max_trial_count(self) -> int | None:
        return self.spec.max_trial_count

    @property
    def parallel_trial_count(self) -> int:
        return self.spec.parallel_trial_count

    @property
    def max_failed_trial_count(self) -> int | None:
        return self.spec.max_failed_trial_count

    @property
    def resume_policy(self) -> str:
        return self.spec.resume_policy.value

    def search_space(self) -> SearchSpace:
        """The HPO parameters or the nasConfig as domain data (`kubenas.space`)."""
        return SearchSpace(
            parameters=tuple(p.normalized() for p in self.spec.parameters),
            nas_config=self.spec.nas_config.normalized() if self.spec.nas_config else None,
        )

    def objective(self) -> Objective:
        if self.spec.objective is None:
            raise SpecError.single("spec.objective", None, "required")
        return self.spec.objective.to_domain()

    def algorithm_settings(self) -> dict[str, str]:
        """algorithmSettings as name -> text, in YAML order."""
        return {s.name: s.value for s in (self.spec.algorithm.algorithm_settings if self.spec.algorithm else ())}

    def early_stopping_settings(self) -> dict[str, str]:
        es = self.spec.early_stopping
        return {s.name: s.value for s in es.algorithm_settings} if es else {}

    def to_dict(self) -> dict[str, Any]:
        """The full resource with defaults, camelCase keys, as `kubectl apply` would take it."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data.pop("status", None)
        return data

    def to_proto(self) -> api_pb2.Experiment:
        """The wire Experiment Katib's controller sends to a suggestion service."""
        msg = api_pb2.Experiment(name=self.name)
        spec = msg.spec
        proto_convert.search_space_to_proto(self.search_space(), spec)
        if self.spec.objective is not None:
            spec.objective.CopyFrom(proto_convert.objective_to_proto(self.objective()))
        if self.spec.algorithm is not None:
            spec.algorithm.algorithm_name = self.spec.algorithm.algorithm_name
            spec.algorithm.algorithm_settings.extend(proto_convert.settings_to_proto(self.algorithm_settings()))
        if self.spec.early_stopping is not None:
            spec.early_stopping.algorithm_name = self.spec.early_stopping.algorithm_name
            spec.early_stopping.algorithm_settings.extend(
                api_pb2.EarlyStoppingSetting(name=k, value=v) for k, v in self.early_stopping_settings().items()
            )
        spec.parallel_trial_count = self.parallel_trial_count
        spec.max_trial_count = self.max_trial_count or 0
        return msg

    @classmethod
    def from_proto(
        cls,
        msg: api_pb2.Experiment,
        namespace: str | None = None,
        extra_spec: Mapping[str, Any] | None = None,
        validate: bool = False,
    ) -> Experiment:
        """Rebuild an Experiment from the wire; what the wire lacks comes from `extra_spec`.

        `extra_spec` holds camelCase spec fields the proto does not carry (trialTemplate,
        metricsCollectorSpec, maxFailedTrialCount, resumePolicy, metricStrategies inside
        objective are lost). With `validate`, every rule runs (a trialTemplate is then needed).
        Raises SpecError for enum values or numbers the spec cannot hold.
        """
        try:
            spec = _spec_dict_from_proto(msg.spec)
        except SpaceError as exc:
            raise SpecError.single(f"spec.{exc.field}", exc.value, exc.allowed) from None
        spec.update(dict(extra_spec or {}))
        metadata: dict[str, Any] = {"name": msg.name}
        if namespace:
            metadata["namespace"] = namespace
        data = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
        if validate:
            return load_experiment_dict(data)
        try:
            exp = cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(field_errors(exc, Experiment)) from None
        return exp.model_copy(update={"spec": apply_defaults(exp.spec)})


def _spec_dict_from_proto(spec: api_pb2.ExperimentSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"parallelTrialCount": spec.parallel_trial_count or DEFAULT_PARALLEL_TRIAL_COUNT}
    if spec.max_trial_count:
        out["maxTrialCount"] = spec.max_trial_count
    space = proto_convert.search_space_from_proto(spec, check=False)
    if space.parameters:
        out["parameters"] = list(space.parameters)
    if space.nas_config is not None:
        out["nasConfig"] = space.nas_config
    if spec.HasField("objective"):
        obj = proto_convert.objective_from_proto(spec.objective)
        out["objective"] = ObjectiveSpec(
            type=obj.type, goal=obj.goal, objective_metric_name=obj.metric_name,
            additional_metric_names=obj.additional_metric_names,
        )
    if spec.HasField("algorithm"):
        out["algorithm"] = AlgorithmSpec(
            algorithm_name=spec.algorithm.algorithm_name,
            algorithm_settings=tuple(AlgorithmSetting(name=s.name, value=s.value) for s in spec.algorithm.algorithm_settings),
        )
    if spec.HasField("early_stopping"):
        out["earlyStopping"] = EarlyStoppingSpec(
            algorithm_name=spec.early_stopping.algorithm_name,
            algorithm_settings=tuple(AlgorithmSetting(name=s.name, value=s.value) for s in spec.early_stopping.algorithm_settings),
        )
    return out


# --- loading ---------------------------------------------------------------------------


def load_experiment_file(path: str | Path, extra_checks: Sequence[ExtraCheck] = ()) -> Experiment:
    """Read, default and validate an Experiment YAML file; raises SpecError listing every problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            # Read one byte past the limit instead of trusting stat(): pipes and /proc report 0.
            raw = handle.read(MAX_YAML_BYTES + 1)
        if len(raw) > MAX_YAML_BYTES:
            raise SpecError.single("file", str(path), f"is larger than {MAX_YAML_BYTES} bytes; an Experiment YAML "
                                   "is a few kilobytes (Kubernetes stores at most ~1.5 MiB per object)", str(path))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecError.single("file", str(path), "does not exist", str(path)) from None
    except IsADirectoryError:
        raise SpecError.single("file", str(path), "is a directory; give an Experiment YAML file", str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError.single("file", str(path), f"is not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r}); "
                               "give an Experiment YAML file", str(path)) from None
    except OSError as exc:
        raise SpecError.single("file", str(path), f"cannot be read: {exc.strerror or exc}", str(path)) from None
    return load_experiment_text(text, str(path), extra_checks)


def load_experiment_text(text: str, source: str = "<string>", extra_checks: Sequence[ExtraCheck] = ()) -> Experiment:
    """Parse YAML text holding one Experiment (other documents, e.g. a ConfigMap, are skipped)."""
    try:
        documents = [d for d in load_yaml_documents(text) if d is not None]
    except YamlInputError as exc:
        raise SpecError([_yaml_error(e, text, source) for e in exc.errors], source) from None
    if not documents:
        raise SpecError.single("(document)", source, "is empty (or only comments): expected a YAML mapping with "
                               "apiVersion, kind, metadata and spec", source)
    experiments = [d for d in documents if isinstance(d, dict) and d.get("kind") == KIND]
    if len(documents) == 1 or not experiments:
        data = documents[0] if documents else None
    elif len(experiments) == 1:
        data = experiments[0]
    else:
        raise SpecError.single("kind", KIND, f"{len(experiments)} Experiment documents found; give one per file", source)
    if not isinstance(data, dict):
        raise SpecError.single("(document)", data, "must be a YAML mapping with apiVersion, kind, metadata and spec", source)
    return load_experiment_dict(data, extra_checks, source)


def _yaml_error(exc: YamlInputError, text: str, source: str) -> FieldError:
    """A refused YAML document as one error line: the field path when known, else the line and column."""
    if exc.path:
        return FieldError(format_path(exc.path), exc.found, f"{exc.reason} ({exc.where})" if exc.where else exc.reason)
    if exc.where:
        return FieldError(exc.where, source_line(text, exc.line), exc.reason)
    return FieldError("yaml", source, f"is refused: {exc.reason}")


def load_experiment_dict(
    data: Mapping[str, Any], extra_checks: Sequence[ExtraCheck] = (), source: str | None = None
) -> Experiment:
    """Validate a decoded resource (camelCase keys); apply Katib's defaults; run every rule."""
    if not isinstance(data, Mapping):
        raise SpecError.single("(document)", data, "must be a mapping with apiVersion, kind, metadata and spec", source)
    header = []
    if data.get("apiVersion") != API_VERSION:
        header.append(FieldError("apiVersion", data.get("apiVersion"), f"must be {API_VERSION!r}"))
    if data.get("kind") != KIND:
        header.append(FieldError("kind", data.get("kind"), f"must be {KIND!r}"))
    for key in ("metadata", "spec"):
        if not isinstance(data.get(key), Mapping):
            header.append(FieldError(key, data.get(key), "required: a mapping"))
    if header:
        raise SpecError(header, source)
    exp, errors, broken, index = _parse_leniently(dict(data))
    exp = exp.model_copy(update={"spec": apply_defaults(exp.spec)})
    params_broken = any(b.startswith("spec.parameters") for b in broken)
    for error in (_renumber(e, index) for e in check_spec(exp.metadata, exp.spec)):
        if not _is_under(error.path, broken) and not _depends_on(error, params_broken, "spec.nasConfig" in broken):
            errors.append(error)
    if not errors:
        for check in extra_checks:
            errors.extend(check(exp))
    if errors:
        raise SpecError(errors, source)
    return exp


def _is_under(path: str, broken: set[str]) -> bool:
    """`path` is a broken path or inside one (`spec.parameters[1]` holds `spec.parameters[1].name`).

    Looks up each of the path's own prefixes: one set lookup per level, whatever the number of
    broken parts (comparing against each of them was quadratic on a spec with thousands).
    """
    return path in broken or any(path[:i] in broken for i, c in enumerate(path) if c in ".[")


def _depends_on(error: FieldError, params_broken: bool, nas_broken: bool) -> bool:
    # Cross-section rules would only repeat (or invent) what a structural error reported already.
    if params_broken and error.path.startswith("spec.trialTemplate.trialParameters") and error.path.endswith(".reference"):
        return True
    return error.path in ("spec.parameters", "spec.nasConfig") and (params_broken or nas_broken)


def _parse_leniently(data: dict[str, Any]) -> tuple[Experiment, list[FieldError], set[str], list[int]]:
    """Model-validate; on structural errors drop the broken parts and try again.

    Returns the model of what is left, the structural errors, the dropped paths, and for
    each remaining spec.parameters item its index in the document (a bad parameter is
    dropped alone, so the rules still judge the others under their own index).
    """
    errors: list[FieldError] = []
    broken: set[str] = set()
    index = list(range(len(data["spec"].get("parameters") or []))) if isinstance(data["spec"].get("parameters"), list) else []
    for _ in range(4):
        try:
            return Experiment.model_validate(data), errors, broken, index
        except ValidationError as exc:
            errors.extend(field_errors(exc, Experiment, index))
            data = _drop_broken(data, exc, broken, index)
    raise SpecError(errors)


def _drop_broken(data: dict[str, Any], exc: ValidationError, broken: set[str], index: list[int]) -> dict[str, Any]:
    data = {**data, "spec": dict(data.get("spec") or {}), "metadata": dict(data.get("metadata") or {})}
    bad_items: set[int] = set()
    for err in exc.errors():
        loc = err["loc"]
        if loc[:2] == ("spec", "parameters") and len(loc) >= 3 and isinstance(loc[2], int) and loc[2] < len(index):
            bad_items.add(loc[2])
            broken.add(f"spec.parameters[{index[loc[2]]}]")
        elif len(loc) >= 2 and loc[0] in ("spec", "metadata"):
            data[str(loc[0])].pop(str(loc[1]), None)
            broken.add(format_path(loc[:2]))
        elif loc:
            data.pop(str(loc[0]), None)
            broken.add(format_path(loc[:1]))
    if bad_items and isinstance(data["spec"].get("parameters"), list):
        items = data["spec"]["parameters"]
        data["spec"]["parameters"] = [p for i, p in enumerate(items) if i not in bad_items]
        index[:] = [orig for i, orig in enumerate(index) if i not in bad_items]
    return data


_PARAMETER_PATH = re.compile(r"^spec\.parameters\[(\d+)\]")


def _renumber(error: FieldError, index: list[int]) -> FieldError:
    """Give an error about a remaining parameter the index it has in the document."""
    match = _PARAMETER_PATH.match(error.path)
    if not match or int(match.group(1)) >= len(index):
        return error
    return FieldError(f"spec.parameters[{index[int(match.group(1))]}]{error.path[match.end():]}", error.value, error.allowed)
