"""Issue 18's ablation: one-shot ENAS against random one-shot and the multi-trial searches,
at an equal CPU budget, on Fashion-MNIST — each method run as a user runs it (`kubenas run`).

Methods, all over the same macro space (examples/enas-oneshot-fashion-mnist.yaml's nasConfig):
- `enas-oneshot`: one trial, shared weights, the LSTM controller samples the children;
- `random-oneshot`: the same trial with `sampler: random` (Li & Talwalkar's baseline);
- `enas`: multi-trial, one child trained from scratch per trial (`trainer.enas`), rewards to
  the controller;
- `random`: multi-trial random search, same trial program.

The budget is CPU-seconds, not wall-clock seconds, so other load on a shared machine does not
change what each method gets: the two one-shot runs go first and their mean CPU time becomes
the budget of each multi-trial run, which is interrupted (SIGINT, as a user's Ctrl-C) once its
process tree has used it. Every method's best architecture is then retrained from scratch
with the same schedule (`trainer.retrain`, same seed, epochs, batch size) and its test
accuracy reported. One torch thread everywhere.

    .venv/bin/python bench/enas_oneshot_compare.py --epochs 2 --retrain-epochs 3
    .venv/bin/python bench/enas_oneshot_compare.py --methods enas-oneshot random-oneshot
    python bench/enas_oneshot_compare.py --device cuda --epochs 10 --retrain-epochs 20   # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "enas-oneshot-fashion-mnist.yaml"
METHODS = ("enas-oneshot", "random-oneshot", "enas", "random")
_METRIC = re.compile(r"([A-Za-z-]+)=(-?[0-9.eE+-]+|nan|inf)\b")


def _settings(spec: dict[str, Any], **values: Any) -> None:
    settings = {s["name"]: s["value"] for s in spec["algorithm"].get("algorithmSettings", [])}
    settings.update({k: str(v) for k, v in values.items()})
    spec["algorithm"]["algorithmSettings"] = [{"name": k, "value": v} for k, v in settings.items()]


def oneshot_experiment(name: str, sampler: str, epochs: int, seed: int, out: Path,
                       train_limit: int | None, overrides: dict[str, int], device: str = "cpu") -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = name
    spec = doc["spec"]
    _settings(spec, num_epochs=epochs, sampler=sampler, random_state=seed, **overrides)
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = [a for a in container["command"] if not a.startswith("--output-dir")]
    container["command"] += [f"--output-dir={out}/${{trialSpec.Name}}", f"--device={device}", "--threads=1"]
    if train_limit is not None:
        container["command"].append(f"--train-limit={train_limit}")
    return doc


def multitrial_experiment(name: str, algorithm: str, trial_epochs: int, train_limit: int, seed: int,
                          device: str = "cpu") -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = name
    spec = doc["spec"]
    spec.update(parallelTrialCount=1, maxTrialCount=10_000, maxFailedTrialCount=10)
    spec["objective"]["additionalMetricNames"] = ["Training-Accuracy"]
    spec["algorithm"] = {"algorithmName": algorithm,
                         "algorithmSettings": [{"name": "random_state", "value": str(seed)}]}
    spec["trialTemplate"]["trialParameters"] = [
        {"name": "architecture", "description": "layers", "reference": "architecture"},
        {"name": "nnConfig", "description": "ops", "reference": "nn_config"}]
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-m", "trainer.enas", "--architecture=${trialParameters.architecture}",
                            "--nn_config=${trialParameters.nnConfig}", f"--num_epochs={trial_epochs}",
                            "--dataset=fashion-mnist", f"--train-limit={train_limit}", "--batch-size=128",
                            f"--device={device}", "--threads=1", f"--seed={seed}"]
    return doc


def tree_cpu_seconds(proc: psutil.Process) -> float:
    """CPU time of a process, its waited-for descendants and its live ones."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def run_experiment(doc: dict[str, Any], workdir: Path, budget_cpu_s: float | None, wall_budget: bool = False) -> dict[str, Any]:
    """Run `kubenas run`; interrupt it once its process tree used `budget_cpu_s` CPU-seconds
    (or, with `wall_budget`, that many wall seconds: on a GPU the host CPU is not the cost)."""
    path = workdir.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kubenas", "run", str(path), "--workdir", str(workdir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched, cpu, interrupted = psutil.Process(proc.pid), 0.0, False
    while proc.poll() is None:
        time.sleep(1.0)
        try:
            cpu = max(cpu, tree_cpu_seconds(watched))
        except psutil.Error:
            pass
        used = time.monotonic() - started if wall_budget else cpu
        if budget_cpu_s is not None and used >= budget_cpu_s and not interrupted:
            proc.send_signal(signal.SIGINT)
            interrupted = True
    wall = time.monotonic() - started
    results = json.loads((workdir / "results.json").read_text())
    return {"results": results, "wall_s": wall, "cpu_s": cpu, "interrupted": interrupted,
            "returncode": proc.returncode}


def entropy_by_epoch(workdir: Path) -> list[tuple[int, float]]:
    """(epoch, Controller-Entropy) from a one-shot trial's log; empty for multi-trial runs."""
    points: list[tuple[int, float]] = []
    for log in workdir.rglob("stdout.log"):
        for line in log.read_text(errors="replace").splitlines():
            metrics = dict(_METRIC.findall(line))
            if "Controller-Entropy" in metrics and "epoch" in metrics:
                points.append((int(float(metrics["epoch"])), round(float(metrics["Controller-Entropy"]), 2)))
    return points


def best_architecture(method: str, run: dict[str, Any], out: Path) -> tuple[str, str]:
    best = run["results"]["best_trial"]
    if best is None:
        raise SystemExit(f"{method}: no successful trial")
    if method.endswith("oneshot"):
        directory = out / best["name"]
        return ((directory / "architecture.json").read_text().strip(), (directory / "nn_config.json").read_text().strip())
    return best["assignments"]["architecture"], best["assignments"]["nn_config"]


def retrain(architecture: str, nn_config: str, epochs: int, seed: int, train_limit: int | None,
            device: str = "cpu") -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "trainer.retrain", f"--architecture={architecture}",
                           f"--nn_config={nn_config}", "--dataset=fashion-mnist", f"--num_epochs={epochs}",
                           "--batch-size=128", f"--device={device}", "--threads=1", f"--seed={seed}",
                           *([f"--train-limit={train_limit}"] if train_limit else [])],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    wall = time.monotonic() - started
    metrics = dict(_METRIC.findall(done.stdout.strip().splitlines()[-1]))
    return {"test_accuracy": float(metrics["Test-Accuracy"]), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--epochs", type=int, default=2, help="one-shot search epochs (sets the CPU budget)")
    parser.add_argument("--budget-cpu-s", type=float, default=None,
                        help="multi-trial budget (default: the one-shot runs' mean CPU time)")
    parser.add_argument("--oneshot-train-limit", type=int, default=None, help="first N training images (smoke runs)")
    parser.add_argument("--final-children", type=int, default=None, help="one-shot: children evaluated at the end")
    parser.add_argument("--controller-steps", type=int, default=None, help="one-shot: controller steps per epoch")
    parser.add_argument("--trial-epochs", type=int, default=1)
    parser.add_argument("--trial-train-limit", type=int, default=10_000)
    parser.add_argument("--retrain-epochs", type=int, default=3)
    parser.add_argument("--retrain-train-limit", type=int, default=None, help="retrain on the first N images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-oneshot-compare")
    parser.add_argument("--device", default="cpu",
                        help="cpu, or cuda: then the multi-trial budget is wall seconds (the one-shot runs' mean wall)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "summary.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}"
    overrides = {k: v for k, v in (("final_children", args.final_children),
                                   ("controller_steps_per_epoch", args.controller_steps)) if v is not None}
    for method in args.methods:
        workdir = args.out / method
        outputs = args.out / f"{method}-outputs"
        if workdir.exists():
            subprocess.run(["rm", "-rf", str(workdir), str(outputs)], check=True)
        if method.endswith("oneshot"):
            doc = oneshot_experiment(f"cmp-{method}", method.split("-")[0], args.epochs, args.seed, outputs,
                                     args.oneshot_train_limit, overrides, args.device)
            run = run_experiment(doc, workdir, None)
        else:
            spent = "search_cpu_s" if args.device == "cpu" else "search_wall_s"
            oneshot = [summary[m][spent] for m in ("enas-oneshot", "random-oneshot") if m in summary]
            budget = args.budget_cpu_s or (sum(oneshot) / len(oneshot) if oneshot else 600.0)
            doc = multitrial_experiment(f"cmp-{method}", method, args.trial_epochs, args.trial_train_limit, args.seed,
                                        args.device)
            run = run_experiment(doc, workdir, budget, wall_budget=args.device != "cpu")
        architecture, nn_config = best_architecture(method, run, outputs)
        row = {"search_wall_s": round(run["wall_s"], 1), "search_cpu_s": round(run["cpu_s"], 1),
               "trials": run["results"]["counts"]["total"],
               "search_objective": run["results"]["best_trial"]["objective"],
               "architecture": architecture, "entropy": entropy_by_epoch(workdir)}
        print(method, json.dumps({k: v for k, v in row.items() if k not in ("architecture", "entropy")}), flush=True)
        row["retrain"] = retrain(architecture, nn_config, args.retrain_epochs, args.seed,
                                 args.retrain_train_limit, args.device)
        print(method, "retrained", json.dumps(row["retrain"]), flush=True)
        summary[method] = row
        summary_path.write_text(json.dumps(summary, indent=1))
    print("| method | search CPU-s | search wall s | trials | search-time objective | retrained test acc. |")
    print("|---|---:|---:|---:|---:|---:|")
    for method in METHODS:
        if method in summary:
            r = summary[method]
            print(f"| `{method}` | {r['search_cpu_s']:.0f} | {r['search_wall_s']:.0f} | {r['trials']} | "
                  f"{r['search_objective']} | {r['retrain']['test_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
