"""gRPC clients of the suggestion services (Katib's Suggestion and EarlyStopping), used by
both runtimes: the local one talks to its `kubenas suggestion serve` process, the cluster
one to each experiment's suggestion Service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from controller.logic import overlay_settings, returned_changes
from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.early_stopping import RuleError, StopRule, rule_from_proto
from kubenas.proto_convert import (
    GRPC_MESSAGE_OPTIONS,
    MAX_SUGGESTIONS_PER_REQUEST,
    settings_from_proto,
    settings_to_proto,
)

__all__ = ["EarlyStoppingClient", "SuggestionClient", "SuggestionReply", "SuggestionServerError"]


class SuggestionServerError(Exception):
    """The server could not start or answered with an error; the message says why."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class SuggestionReply:
    """New assignments (possibly with algorithm-chosen names and labels); `exhausted` when the
    algorithm said no more will come (grid); `algorithm_settings`: those of the reply's
    `algorithm` settings that differ from what the request carried (Katib's hyperband keeps its
    state there), in the reply's order; empty for an echo or none."""

    assignments: tuple[api_pb2.GetSuggestionsReply.ParameterAssignments, ...]
    exhausted: bool
    algorithm_settings: tuple[tuple[str, str], ...] = ()


class SuggestionClient:
    """Katib's Suggestion service client: validation and batches of new assignments."""

    def __init__(self, address: str, timeout_s: float = 600.0) -> None:
        self.channel = grpc.insecure_channel(address, options=GRPC_MESSAGE_OPTIONS)
        self.stub = api_pb2_grpc.SuggestionStub(self.channel)
        self.timeout_s = timeout_s

    def validate(self, experiment: api_pb2.Experiment) -> None:
        """Raise SuggestionServerError (code INVALID_ARGUMENT for bad settings) if rejected."""
        try:
            self.stub.ValidateAlgorithmSettings(
                api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment), timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise SuggestionServerError(exc.details() or str(exc.code()), exc.code()) from None

    def suggest(self, experiment: api_pb2.Experiment, trials: Sequence[api_pb2.Trial],
                current: int, total: int, stored_settings: Mapping[str, str] | None = None) -> SuggestionReply:
        """Ask for `current` new assignments (at most MAX_SUGGESTIONS_PER_REQUEST; the caller
        asks again for the rest). OUT_OF_RANGE with trailing metadata `remaining` (a grid
        running out) is retried once with what remains; zero remaining is `exhausted`.
        `stored_settings` (what earlier replies returned) go over the experiment's algorithm
        settings, as Katib's controller sends them."""
        if stored_settings:
            experiment = _with_settings(experiment, stored_settings)
        sent = settings_from_proto(experiment.spec.algorithm.algorithm_settings)
        if current > MAX_SUGGESTIONS_PER_REQUEST:
            total -= current - MAX_SUGGESTIONS_PER_REQUEST
            current = MAX_SUGGESTIONS_PER_REQUEST
        while True:
            request = api_pb2.GetSuggestionsRequest(experiment=experiment, trials=list(trials),
                                                    current_request_number=current, total_request_number=total)
            try:
                reply = self.stub.GetSuggestions(request, timeout=self.timeout_s)
                returned = [(s.name, s.value) for s in reply.algorithm.algorithm_settings]
                return SuggestionReply(tuple(reply.parameter_assignments), exhausted=False,
                                       algorithm_settings=tuple(returned_changes(sent, returned).items()))
            except grpc.RpcError as exc:
                if exc.code() is not grpc.StatusCode.OUT_OF_RANGE:
                    raise SuggestionServerError(exc.details() or str(exc.code()), exc.code()) from None
                remaining = _remaining(exc)
                if remaining <= 0 or remaining >= current:
                    return SuggestionReply((), exhausted=True)
                total -= current - remaining
                current = remaining

    def close(self) -> None:
        self.channel.close()


class EarlyStoppingClient:
    """Katib's EarlyStopping service client (the suggestion server serves it on its own port
    too): settings validation and the rules running trials must obey, computed from the
    observation logs in the DBManager at `db_address`."""

    def __init__(self, address: str, db_address: str, timeout_s: float = 120.0) -> None:
        self.channel = grpc.insecure_channel(address, options=GRPC_MESSAGE_OPTIONS)
        self.stub = api_pb2_grpc.EarlyStoppingStub(self.channel)
        self.db_address, self.timeout_s = db_address, timeout_s

    def validate(self, spec: api_pb2.EarlyStoppingSpec) -> None:
        """Raise SuggestionServerError (code INVALID_ARGUMENT for bad settings) if rejected."""
        try:
            self.stub.ValidateEarlyStoppingSettings(
                api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=spec), timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise SuggestionServerError(exc.details() or str(exc.code()), exc.code()) from None

    def rules(self, experiment: api_pb2.Experiment, trials: Sequence[api_pb2.Trial]) -> tuple[StopRule, ...]:
        """The current rules (empty before the algorithm has enough finished trials).
        Raises SuggestionServerError if the call fails or a rule cannot be applied."""
        request = api_pb2.GetEarlyStoppingRulesRequest(experiment=experiment, trials=list(trials),
                                                       db_manager_address=self.db_address)
        try:
            reply = self.stub.GetEarlyStoppingRules(request, timeout=self.timeout_s)
            return tuple(rule_from_proto(r) for r in reply.early_stopping_rules)
        except grpc.RpcError as exc:
            raise SuggestionServerError(exc.details() or str(exc.code()), exc.code()) from None
        except RuleError as exc:
            raise SuggestionServerError(f"unusable early stopping rule: {exc}") from None

    def close(self) -> None:
        self.channel.close()


def _with_settings(experiment: api_pb2.Experiment, stored: Mapping[str, str]) -> api_pb2.Experiment:
    merged = overlay_settings(settings_from_proto(experiment.spec.algorithm.algorithm_settings), stored)
    out = api_pb2.Experiment()
    out.CopyFrom(experiment)
    del out.spec.algorithm.algorithm_settings[:]
    out.spec.algorithm.algorithm_settings.extend(settings_to_proto(merged))
    return out


def _remaining(exc: grpc.RpcError) -> int:
    for key, value in (exc.trailing_metadata() or ()):  # type: ignore[attr-defined]
        if key == "remaining":
            try:
                return int(value)
            except (TypeError, ValueError):
                return 0
    return 0
