"""The `kubenas` command. Thin: parses flags, calls one function, maps errors to exit 2.

Each command imports its implementation lazily so `kubenas validate` never pays for
torch, kopf or the kubernetes client.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from collections.abc import Iterable

    from kubenas.experiment import Experiment, FieldError
    from suggestion.algorithms.base import InvalidSettings

app = typer.Typer(
    name="kubenas",
    help="Neural architecture search, Katib v1beta1 compatible: run experiments locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
suggestion_app = typer.Typer(help="Suggestion (search algorithm) server.", no_args_is_help=True)
db_app = typer.Typer(help="Observation store (DBManager) server.", no_args_is_help=True)
app.add_typer(suggestion_app, name="suggestion")
app.add_typer(db_app, name="db")
bench_app = typer.Typer(help="Benchmarks of the search algorithms on tabular NAS benchmarks.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

# No emoji codes: a YAML key `:smile:` must be printed as written, not as a picture.
def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        print(f"kubenas {version('kubenas')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="print the installed kubenas version and exit"),
) -> None:
    """Neural architecture search, Katib v1beta1 compatible: run experiments locally or on Kubernetes."""


err = Console(stderr=True, highlight=False, emoji=False)
out = Console(highlight=False, emoji=False)

USAGE_ERROR = 2
INT32_MAX = 2**31 - 1  # the spec's counts are int32; so are their overrides


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(USAGE_ERROR)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _settings_error(base: str, exc: InvalidSettings, given: Iterable[str]) -> FieldError:
    """Where an algorithm's complaint belongs: a spec field (`nasConfig...`, `parameters...`) it
    names is reported at `spec.<field>`; anything else is a setting, `<base>[<name>]`."""
    from kubenas.experiment import FieldError

    field = exc.setting
    if field not in given and field.split(".", 1)[0].split("[", 1)[0] in ("nasConfig", "parameters",
                                                                         "parallelTrialCount"):
        return FieldError(f"spec.{field}", exc.value, exc.allowed)
    return FieldError(f"{base}[{field}]", exc.value, exc.allowed)


def _check_algorithm(exp: Experiment) -> list[FieldError]:
    """The registry and the algorithm's own validate(): known name, usable settings and space."""
    from kubenas.experiment import FieldError
    from kubenas.space import SpaceError
    from suggestion.algorithms.base import InvalidSettings, Problem
    from suggestion.algorithms.registry import UnknownAlgorithm, algorithm_class, algorithm_names

    name = exp.algorithm_name
    try:
        cls = algorithm_class(name)
    except UnknownAlgorithm:
        return [FieldError("spec.algorithm.algorithmName", name, f"must be one of: {', '.join(algorithm_names())}")]
    problem = Problem(exp.name, exp.search_space(), exp.objective(), exp.algorithm_settings(),
                      parallel_trial_count=exp.parallel_trial_count)
    try:
        cls().validate(problem)
    except InvalidSettings as exc:
        return [_settings_error("spec.algorithm.algorithmSettings", exc, exp.algorithm_settings())]
    except SpaceError as exc:
        return [FieldError(f"spec.{exc.field}", exc.value, exc.allowed)]
    return []


def _check_early_stopping(exp: Experiment) -> list[FieldError]:
    """The early-stopping registry and the algorithm's settings parser, when earlyStopping is set."""
    from kubenas.experiment import FieldError
    from suggestion.algorithms.base import InvalidSettings
    from suggestion.early_stopping import (
        UnknownEarlyStopping,
        early_stopping_class,
        early_stopping_names,
    )

    spec = exp.spec.early_stopping
    if spec is None or not spec.algorithm_name:
        return []  # absent, or already reported by the static rules
    try:
        cls = early_stopping_class(spec.algorithm_name)
    except UnknownEarlyStopping:
        return [FieldError("spec.earlyStopping.algorithmName", spec.algorithm_name,
                           f"must be one of: {', '.join(early_stopping_names())}")]
    try:
        cls().parse(exp.early_stopping_settings())
    except InvalidSettings as exc:
        return [_settings_error("spec.earlyStopping.algorithmSettings", exc, exp.early_stopping_settings())]
    return []


@app.command()
def validate(file: Path = typer.Argument(..., help="Experiment YAML (kubeflow.org/v1beta1)")) -> None:
    """Check an Experiment YAML against Katib's rules; print every error with its field path."""
    from kubenas.experiment import SpecError, load_experiment_file

    try:
        exp = load_experiment_file(file, extra_checks=[_check_algorithm, _check_early_stopping])
    except SpecError as exc:
        for line in exc.lines():
            err.print(f"[red]{escape(str(file))}:[/] {escape(line)}", soft_wrap=True)
        raise typer.Exit(USAGE_ERROR) from None
    out.print(f"[green]ok[/] {escape(str(file))}: experiment {exp.name!r}, algorithm {exp.algorithm_name!r}, "
              f"{'nasConfig' if exp.is_nas else f'{len(exp.parameters)} parameters'}, "
              f"maxTrialCount {exp.max_trial_count}, parallelTrialCount {exp.parallel_trial_count}", soft_wrap=True)


@app.command()
def algorithms() -> None:
    """List the registered search algorithms."""
    from suggestion.algorithms.registry import algorithm_class, algorithm_names

    names = algorithm_names()
    width = max(map(len, names))
    for name in names:
        cls = algorithm_class(name)
        kinds = "/".join(k for k, ok in (("hpo", cls.supports_hpo), ("nas", cls.supports_nas)) if ok)
        out.print(f"{name:<{width}}  {kinds:<7}  {cls.description}", markup=False, soft_wrap=True)


@suggestion_app.command("serve")
def suggestion_serve(
    algorithm: str = typer.Option(..., "--algorithm", "-a", help="registered algorithm name"),
    port: int = typer.Option(6789, min=0, max=65535, help="gRPC port (0 picks a free one)"),
    host: str = typer.Option("0.0.0.0", help="address to bind"),
    state_dir: Path | None = typer.Option(None, help="directory for durable algorithm state"),
    early_stopping_port: int | None = typer.Option(
        None, min=0, max=65535, help="also listen on this port (Katib's 6788; 0 picks a free one) for "
        "the EarlyStopping service, which --port serves too"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Serve the Suggestion and EarlyStopping gRPC services (with health and reflection) until SIGTERM."""
    from suggestion.algorithms.registry import UnknownAlgorithm, algorithm_class, algorithm_names

    _logging(verbose)
    try:
        algorithm_class(algorithm)
    except UnknownAlgorithm:
        raise _fail(f"--algorithm: invalid value {algorithm!r}: must be one of: {', '.join(algorithm_names())}") from None
    if state_dir is not None:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _fail(f"--state-dir: invalid value {str(state_dir)!r}: must be a directory that can be created "
                        f"and written ({exc.strerror or exc})") from None
    from suggestion.service import serve

    try:
        serve(algorithm, host=host, port=port, state_dir=state_dir, early_stopping_port=early_stopping_port)
    except OSError as exc:
        early = early_stopping_port is not None and getattr(exc, "port", None) == early_stopping_port != port
        which = f"--early-stopping-port {early_stopping_port}" if early else f"--port {port}"
        raise _fail(f"{which} on {host}: cannot listen: {exc}") from None


@db_app.command("serve")
def db_serve(
    db: str = typer.Option("sqlite:///kubenas.db", help="sqlite:///PATH or postgresql://..."),
    port: int = typer.Option(6789, min=0, max=65535),
    host: str = typer.Option("0.0.0.0"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Serve the DBManager gRPC service over an observation store."""
    _logging(verbose)
    from controller.store import StoreError, serve_dbmanager

    try:
        serve_dbmanager(db, host=host, port=port)
    except StoreError as exc:
        raise _fail(f"--db {db!r}: {exc}") from None
    except OSError as exc:
        raise _fail(f"--port {port} on {host}: {exc}") from None


@app.command()
def run(
    file: str = typer.Argument(..., metavar="FILE", help="Experiment YAML"),
    workdir: str | None = typer.Option(None, metavar="DIR", help="work directory (default: runs/<experiment name>)"),
    parallel: int | None = typer.Option(None, min=1, max=INT32_MAX, help="override parallelTrialCount"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted run from the store"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run an experiment on this machine: suggestion server, SQLite store, trials as processes."""
    # Taken as text: typer would turn "" into Path("."), silently running in the current directory.
    if not file:
        raise _fail("FILE: '' — give the path of an Experiment YAML")
    if workdir == "":
        raise _fail("--workdir: '' — give a directory (or leave the flag out for runs/<experiment name>)")
    _logging(verbose)
    from controller.local import RunError, run_experiment

    try:
        code = run_experiment(Path(file), workdir=Path(workdir) if workdir is not None else None, parallel=parallel,
                              resume=resume, console=out)
    except RunError as exc:
        for line in exc.lines():
            err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
        raise typer.Exit(USAGE_ERROR) from None
    raise typer.Exit(code)


@app.command()
def runs(
    workdirs: list[str] = typer.Argument(None, metavar="[WORKDIR]...",
                                         help="run directories, or directories holding them (default: runs/)"),
) -> None:
    """List past and running `kubenas run`s: experiment, algorithm, status, trials, best objective, start, duration."""
    from controller.report import table_width
    from controller.runs import find_runs, runs_table

    roots = [Path(w) for w in (workdirs or ["runs"])]
    for given, root in zip(workdirs or ["runs"], roots):
        if not given or not root.is_dir():
            raise _fail(f"WORKDIR: {given!r} — no such directory; give a `kubenas run` work directory or one "
                        f"holding them (default runs/)")
    found = find_runs(roots)
    if not found:
        out.print(f"no kubenas runs under {', '.join(map(str, roots))}", markup=False, soft_wrap=True)
        return
    width = table_width(out)
    Console(file=out.file, width=width, highlight=False, emoji=False,
            force_terminal=out.is_terminal).print(runs_table(found, width))


@app.command()
def controller(
    namespace: str | None = typer.Option(None, help="watch one namespace (default: all)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the Kubernetes operator (kopf) for Experiment, Suggestion and Trial resources."""
    _logging(verbose)
    try:
        from controller.kube.operator import run_operator
    except ValueError as exc:  # OperatorEnvironmentError: a KUBENAS_* variable read at import
        raise _fail(str(exc)) from None

    run_operator(namespace=namespace)


@app.command()
def dashboard(
    workdirs: list[str] | None = typer.Argument(None, metavar="[WORKDIR]...",
                                                help="kubenas run work directories, or directories of them (default: runs)"),
    port: int = typer.Option(8080, min=0, max=65535, help="port to listen on (0: any free one)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    cluster: bool = typer.Option(False, "--cluster", help="show the cluster's Experiments (kubeconfig or in-cluster)"),
    namespace: str | None = typer.Option(None, help="with --cluster: one namespace (default: all)"),
    db_manager: str | None = typer.Option(None, "--db-manager", metavar="HOST:PORT",
                                          help="with --cluster: the DBManager for metric logs "
                                               "(default: kubenas-db-manager.kubenas:6789)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Serve a live web view of experiments: local runs (read while they run) or the cluster's."""
    _logging(verbose)
    if cluster and workdirs:
        raise _fail(f"WORKDIR: {workdirs[0]!r} — --cluster reads the Kubernetes API, not work directories; "
                    f"give one or the other")
    if not cluster and (namespace is not None or db_manager is not None):
        raise _fail(f"{'--namespace' if namespace is not None else '--db-manager'}: only used with --cluster")
    if any(not w for w in workdirs or []):
        raise _fail("WORKDIR: '' — give a directory")
    try:
        from dashboard.server import serve
    except ImportError as exc:  # starlette, uvicorn, jinja2 or plotly missing
        raise _fail(f"kubenas dashboard needs {exc.name or 'its web stack'}: pip install 'kubenas[dashboard]'") from None
    from dashboard.source import DataSource, SourceError

    source: DataSource
    if cluster:
        from dashboard.cluster_source import ClusterSource

        try:
            source = ClusterSource.connect(namespace=namespace, db_manager=db_manager)
        except SourceError as exc:
            raise _fail(f"--cluster: {exc}") from None
    else:
        from dashboard.local_source import LocalSource

        source = LocalSource([Path(w) for w in workdirs or ["runs"]])
        for problem in source.problems():
            err.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)
    try:
        serve(source, host, port)
    except OSError as exc:
        raise _fail(f"--host {host} --port {port}: cannot listen: {exc.strerror or exc}") from None
    finally:
        source.close()


@bench_app.command("nb201")
def bench_nb201(
    algorithms: str | None = typer.Option(
        None, help="comma list of registered algorithms (default: random,evolution,bayesian,enas,tpe, those registered)"),
    datasets: str = typer.Option("cifar10", help="comma list of cifar10, cifar100, imagenet16-120"),
    seeds: int | None = typer.Option(None, help="number of seeds, 0..N-1 (default 10)"),
    seed_list: str | None = typer.Option(None, help="comma list of seeds instead of --seeds, e.g. 3,7,11"),
    queries: int | None = typer.Option(None, help="trials per run (default 100; with --budget-seconds: no limit)"),
    budget_seconds: float | None = typer.Option(None, help="simulated seconds per run (the benchmark's training times)"),
    time_scale: float = typer.Option(1.0, help="factor on each training time; 0.06 charges NB201's 12-epoch proxy"),
    parallel: int = typer.Option(1, help="trials per GetSuggestions request (synchronous workers)"),
    setting: list[str] = typer.Option([], "--setting", metavar="ALGO:NAME=VALUE", help="algorithm setting (repeatable)"),
    out_dir: str = typer.Option("runs/bench-nb201", "--out", metavar="DIR", help="output directory"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Search NAS-Bench-201 with each algorithm through a real suggestion server; table, plot, results.json."""
    from kubenas_bench.nb201 import (
        BenchConfig,
        BenchError,
        check_budget,
        parse_algorithms,
        parse_datasets,
        parse_seeds,
        parse_settings,
        run_bench,
    )
    from suggestion.algorithms.registry import algorithm_names

    _logging(verbose)
    if not verbose:
        logging.getLogger("kubenas_bench.nb201").setLevel(logging.WARNING)
    try:
        if not out_dir:
            raise BenchError("--out: invalid value '': give a directory")
        if not 1 <= parallel <= 1000:
            raise BenchError(f"--parallel: invalid value {parallel!r}: must be an integer in [1, 1000]")
        check_budget(queries, budget_seconds, time_scale)
        names = parse_algorithms(algorithms, algorithm_names())
        config = BenchConfig(
            algorithms=names, datasets=parse_datasets(datasets), seeds=parse_seeds(seeds, seed_list),
            out=Path(out_dir),
            queries=queries if queries is not None or budget_seconds is not None else 100,
            budget_seconds=budget_seconds, parallel=parallel, time_scale=time_scale,
            settings=parse_settings(setting, names),
        )
        run_bench(config, out)
    except BenchError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        err.print("interrupted; results.json holds the runs that finished", soft_wrap=True)
        raise typer.Exit(130) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
