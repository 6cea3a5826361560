"""What every reconcile step works with: the API server (a Protocol), the Context (where the
config lives, the clock, the gRPC clients and their addresses) and the small reads and
writes all three kinds share."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.dbmanager import DBManagerClient
from controller.grpc_clients import EarlyStoppingClient, SuggestionClient
from controller.kube import render
from controller.kube.config import ConfigError, ControllerConfig, parse_config_map
from kubenas import rfc3339
from kubenas.experiment import Experiment, load_experiment_dict

__all__ = [
    "API",
    "Api",
    "Context",
    "delete_workload",
    "early_stopping_address",
    "experiment_selector",
    "fresh",
    "get_or_create",
    "load_experiment",
    "ns_name",
    "suggestion_address",
    "trial_selector",
]

API = render.API_VERSION


class Api(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...
    def list_objects(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...
    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    def patch_spec(self, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None: ...
    def config_map(self, namespace: str, name: str) -> dict[str, str] | None: ...
    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...
    def pod_log(self, namespace: str, pod: str, container: str | None) -> str: ...


def suggestion_address(service: str, namespace: str) -> str:
    """Where the controller reaches a suggestion Service. In the cluster the Service DNS name;
    outside (development) `KUBENAS_SUGGESTION_ADDRESS`, e.g. `localhost:6789` next to a
    `kubectl port-forward svc/<experiment>-<algorithm> 6789`."""
    template = os.environ.get("KUBENAS_SUGGESTION_ADDRESS", "{service}.{namespace}:" + str(render.SUGGESTION_PORT))
    return template.format(service=service, namespace=namespace)


def early_stopping_address(service: str, namespace: str) -> str:
    """Where the controller reaches a suggestion Service's EarlyStopping port (Katib: 6788);
    outside the cluster `KUBENAS_EARLY_STOPPING_ADDRESS`, e.g. `localhost:6788`."""
    template = os.environ.get("KUBENAS_EARLY_STOPPING_ADDRESS",
                              "{service}.{namespace}:" + str(render.EARLY_STOPPING_PORT))
    return template.format(service=service, namespace=namespace)


def _now() -> str:
    return rfc3339.now()


@dataclass
class Context:
    """What a reconcile step needs besides the resource: the API, where config lives, clocks and addresses."""

    api: Api
    config_namespace: str = "kubenas-system"
    config_name: str = "katib-config"
    now: Callable[[], str] = _now
    address_of: Callable[[str, str], str] = suggestion_address
    db_address: str | None = None  # overrides the ConfigMap's dbManagerAddress (development)
    clients: dict[str, SuggestionClient] = field(default_factory=dict)
    early_stopping_address_of: Callable[[str, str], str] = early_stopping_address
    early_stopping_clients: dict[str, EarlyStoppingClient] = field(default_factory=dict)
    db_clients: dict[str, DBManagerClient] = field(default_factory=dict)
    # Seconds a read katib-config is reused (0: read on every use). The operator reuses it
    # briefly: without that, every trial would cost a ConfigMap read for the DBManager address.
    config_ttl_s: float = 0.0
    _config_cache: list[tuple[float, ControllerConfig]] = field(default_factory=list)

    def config(self) -> ControllerConfig:
        if self._config_cache and time.monotonic() - self._config_cache[0][0] < self.config_ttl_s:
            return self._config_cache[0][1]
        data = self.api.config_map(self.config_namespace, self.config_name)
        if data is None:
            raise ConfigError("ConfigMap", f"{self.config_namespace}/{self.config_name}",
                              "not found; install manifests/base, or set KUBENAS_NAMESPACE to where it is")
        config = parse_config_map(data)
        self._config_cache[:] = [(time.monotonic(), config)]
        return config

    def suggestion_client(self, address: str) -> SuggestionClient:
        if address not in self.clients:
            self.clients[address] = SuggestionClient(address, timeout_s=600.0)
        return self.clients[address]

    def early_stopping_client(self, address: str) -> EarlyStoppingClient:
        if address not in self.early_stopping_clients:
            self.early_stopping_clients[address] = EarlyStoppingClient(
                address, self.db_address or self.config().db_manager_address)
        return self.early_stopping_clients[address]

    def db_manager_address(self) -> str:
        return self.db_address or self.config().db_manager_address

    def db(self) -> contextlib.AbstractContextManager[DBManagerClient]:
        """The DBManager client, one channel per address for the controller's life (a `with`
        block does not close it: a channel per call costs a connection per trial)."""
        address = self.db_manager_address()
        if address not in self.db_clients:
            self.db_clients[address] = DBManagerClient(address)
        return contextlib.nullcontext(self.db_clients[address])


def ns_name(body: Mapping[str, Any]) -> tuple[str, str]:
    return body["metadata"]["namespace"], body["metadata"]["name"]


def fresh(ctx: Context, kind: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resource as the API server holds it now. A watch cache may lag behind our own last
    status patch; appending suggestions to a stale list would lose some and ask again."""
    ns, name = ns_name(body)
    return ctx.api.get(API, kind, ns, name)


def load_experiment(body: Mapping[str, Any]) -> Experiment:
    """The Experiment of a resource body (SpecError when its spec breaks the rules)."""
    return load_experiment_dict({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body})


def experiment_selector(experiment: str) -> str:
    """The label selector of everything made for an experiment (Trials, Jobs, pods)."""
    return f"{render.EXPERIMENT_LABEL}={experiment}"


def trial_selector(trial: str) -> str:
    """The label selector of a trial's pods."""
    return f"{render.TRIAL_LABEL}={trial}"


def get_or_create(ctx: Context, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return ctx.api.get(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]) or ctx.api.create(obj)


def delete_workload(ctx: Context, trial: Mapping[str, Any]) -> None:
    """Delete the trial's workload (a Job unless its runSpec names another kind)."""
    ns, name = ns_name(trial)
    run_spec = trial["spec"].get("runSpec") or {}
    ctx.api.delete(run_spec.get("apiVersion", "batch/v1"), run_spec.get("kind", "Job"), ns, name)
