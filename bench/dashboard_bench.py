"""`kubenas dashboard`: how long a 1,000-trial experiment takes to load (issue 19.3).

Builds work directories the way `kubenas run` leaves them (a SQLite store written by the
real SQLiteStore, experiment.json, the Experiment YAML): N trials with four HPO parameters
and REPORTS intermediate values each; and a 10-trial one as the baseline. Serves them with
the real server (uvicorn, a thread) and times, per experiment, the HTML page and the three
API answers the page fetches (experiment, curves), medians over --repeat. With --browser
(Debian's chromium + chromedriver) it also times the page in a headless browser: from
navigation until the trials table holds every row and the charts are drawn.

    PYTHONPATH=. python bench/dashboard_bench.py [--trials 1000] [--repeat 15] [--browser]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from controller.store import TrialRow
from controller.store_sqlite import SQLiteStore
from dashboard.local_source import LocalSource
from dashboard.server import make_server
from kubenas.trials import TrialCondition

REPORTS = 20


def build(root: Path, name: str, trials: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    work = root / name
    work.mkdir(parents=True)
    spec = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": {
        "objective": {"type": "maximize", "objectiveMetricName": "acc"},
        "algorithm": {"algorithmName": "random"}, "maxTrialCount": trials, "parallelTrialCount": 4,
        "parameters": [{"name": n, "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
                       for n in ("lr", "momentum", "dropout")]
                      + [{"name": "optimizer", "parameterType": "categorical",
                          "feasibleSpace": {"list": ["sgd", "adam", "rmsprop"]}}]}}
    (root / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    (work / "experiment.json").write_text(json.dumps({"experiment": name, "file": str(root / f"{name}.yaml"),
                                                      "pid": None}))
    store = SQLiteStore(work / "kubenas.db")
    try:
        for i in range(trials):
            level = rng.random()
            stopped = rng.random() < 0.2
            steps = rng.randint(3, 6) if stopped else REPORTS
            stamp = f"2026-12-03T10:{i // 60 % 60:02d}:{i % 60:02d}"
            trial_name = f"{name}-{i:05d}"
            store.report(trial_name, [("acc", level * (s + 1) / REPORTS, f"{stamp}.{s:06d}Z") for s in range(steps)])
            store.upsert_trial(name, TrialRow(
                name=trial_name,
                assignments={"lr": f"{rng.random():.4f}", "momentum": f"{rng.random():.4f}",
                             "dropout": f"{rng.random():.4f}", "optimizer": rng.choice(["sgd", "adam", "rmsprop"])},
                condition=TrialCondition.EARLY_STOPPED if stopped else TrialCondition.SUCCEEDED,
                start_time=f"{stamp}.000000Z", completion_time=f"{stamp}.{steps:06d}Z",
                observation={"acc": level * steps / REPORTS}, duration_s=float(steps)))
    finally:
        store.close()


def _median_ms(client: httpx.Client, url: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        response.raise_for_status()
    return statistics.median(times) * 1000


def _browser_ms(base: str, path: str, repeat: int) -> tuple[float, float | None] | None:
    """Medians, on the page's own clock (0 = navigation start), of when the page has drawn
    everything but the parallel coordinates (the trials table, facts, charts, curves) and of
    when those are drawn too (WebGL, last); for a page that draws nothing, of its load event."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    drawn: list[float] = []
    last: list[float] = []
    loaded = "return document.readyState === 'complete' && performance.getEntriesByType('navigation')[0].loadEventEnd"
    try:
        driver.get(base + path)  # warm: plotly.min.js in the caches, as on any later visit
        for _ in range(repeat):
            driver.get("about:blank")  # the previous page's teardown (WebGL contexts) is not this load's
            driver.get(base + path)
            deadline = time.monotonic() + 300
            if path.startswith("/experiments/") and not path.endswith("/none"):
                while driver.execute_script("return window.kubenasParcoordsAt") is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                drawn.append(driver.execute_script("return window.kubenasDrawnAt"))
                last.append(driver.execute_script("return window.kubenasParcoordsAt"))
            else:
                while not driver.execute_script(loaded) and time.monotonic() < deadline:
                    time.sleep(0.05)
                drawn.append(driver.execute_script(loaded))
    finally:
        driver.quit()
    return statistics.median(drawn), statistics.median(last) if last else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--browser", action="store_true", help="also time the page in headless chromium")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    try:
        sizes = {"small": 10, "large": args.trials}
        for name, n in sizes.items():
            build(root, name, n)
        server = make_server(LocalSource([root]))
        base = f"http://127.0.0.1:{server.port}"
        print(f"load average {os.getloadavg()[0]:.1f}; {REPORTS} reports per trial (20% early stopped: 3-6)")
        print(f"{'experiment':>12} {'trials':>7} {'HTML ms':>9} {'API ms':>8} {'curves ms':>10} {'sum ms':>8} "
              f"{'API KiB':>8} {'drawn ms':>9} {'+parcoords':>11}")
        rows = {}
        with httpx.Client(timeout=60) as client:
            for name, n in sizes.items():
                html = _median_ms(client, f"{base}/experiments/{name}", args.repeat)
                api = _median_ms(client, f"{base}/api/experiments/{name}", args.repeat)
                curves = _median_ms(client, f"{base}/api/experiments/{name}/curves", args.repeat)
                size = len(client.get(f"{base}/api/experiments/{name}").content) / 1024
                shown = _browser_ms(base, f"/experiments/{name}", max(3, args.repeat // 3)) if args.browser else None
                rows[name] = html + api + curves
                drawn, last = shown if shown is not None else (None, None)
                print(f"{name:>12} {n:>7} {html:>9.1f} {api:>8.1f} {curves:>10.1f} {rows[name]:>8.1f} {size:>8.0f} "
                      f"{'' if drawn is None else f'{drawn:.0f}':>9} {'' if last is None else f'{last:.0f}':>11}")
        print(f"ratio large/small (server sum): {rows['large'] / rows['small']:.1f}x")
        if args.browser:
            # the floor of any page: an error page loads plotly.min.js (4.7 MB) and draws nothing
            floor = _browser_ms(base, "/experiments/none", max(3, args.repeat // 3))
            if floor is not None:
                print(f"browser floor (an error page: loads plotly.js, draws nothing): {floor[0]:.0f} ms")
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
