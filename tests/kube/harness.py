"""What the reconcile tests run against: a real suggestion server and a real DBManager over
SQLite on local ports, and FakeKubeApi (the API server is a fake: none can run here) holding
the katib-config ConfigMap that names the suggestion images."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from controller.dbmanager import make_dbmanager_server
from controller.kube.context import Context
from controller.kube.experiment import reconcile_experiment
from controller.kube.suggestion import reconcile_suggestion
from controller.kube.trial import reconcile_trial
from controller.store_sqlite import SQLiteStore
from suggestion.service import make_server
from tests.kube.fake_cluster import FakeKubeApi


@contextmanager
def running_servers(tmp_path: Path, algorithm: str, state_dir: Path | None = None) -> Iterator[dict[str, int]]:
    """The suggestion server for `algorithm` (it also serves EarlyStopping) and a DBManager."""
    suggestion, suggestion_port = make_server(algorithm, port=0, state_dir=state_dir)
    suggestion.start()
    store = SQLiteStore(tmp_path / "kubenas.db")
    db, db_port = make_dbmanager_server(store)
    try:
        yield {"suggestion": suggestion_port, "db": db_port}
    finally:
        suggestion.stop(None)
        db.stop(None)
        store.close()


def katib_config(*algorithms: str, early_stoppings: tuple[str, ...] = ("medianstop",)) -> dict[str, Any]:
    """The katib-config ConfigMap, mapping each of `algorithms` (and `early_stoppings`) to the suggestion image."""
    def rows(names: tuple[str, ...]) -> str:
        return "".join(f"    - {{algorithmName: {name}, image: kubenas/suggestion:0.1.0}}\n" for name in names)

    text = "runtime:\n  suggestions:\n" + rows(algorithms)
    if early_stoppings:
        text += "  earlyStoppings:\n" + rows(early_stoppings)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "katib-config", "namespace": "kubenas-system"},
            "data": {"katib-config.yaml": text}}


def fake_api(*algorithms: str) -> FakeKubeApi:
    """An API server holding the katib-config for `algorithms`."""
    fake = FakeKubeApi()
    fake.create(katib_config(*algorithms))
    return fake


def context(api: FakeKubeApi, servers: dict[str, int]) -> Context:
    # Every Service resolves to the one local server, which serves Suggestion and EarlyStopping.
    address = f"127.0.0.1:{servers['suggestion']}"
    return Context(api=api, address_of=lambda service, ns: address,
                   early_stopping_address_of=lambda service, ns: address,
                   db_address=f"127.0.0.1:{servers['db']}")


def reconcile_once(ctx: Context, api: FakeKubeApi) -> None:
    """One controller pass over every Experiment, Suggestion and Trial (the fake Deployments
    become ready in between, as a kubelet would make them)."""
    for exp in api.kind("Experiment"):
        reconcile_experiment(ctx, exp)
    for sugg in api.kind("Suggestion"):
        reconcile_suggestion(ctx, sugg)
    api.make_deployments_ready()
    for trial in api.kind("Trial"):
        reconcile_trial(ctx, trial)


def drive(ctx: Context, api: FakeKubeApi, steps: int = 40, jobs_per_step: int | None = None) -> dict[str, Any]:
    """Reconcile and run the Jobs until the (only) Experiment is Succeeded or Failed; return it."""
    for _ in range(steps):
        reconcile_once(ctx, api)
        api.run_jobs(limit=jobs_per_step)
        exp = api.kind("Experiment")[0]
        conditions = {c["type"] for c in exp.get("status", {}).get("conditions", []) if c["status"] == "True"}
        if conditions & {"Succeeded", "Failed"}:
            return exp
    raise AssertionError(f"experiment did not finish: {api.kind('Experiment')[0].get('status')}")
