"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium.

Screenshots go to test-artifacts/dashboard/ (KUBENAS_TEST_ARTIFACTS overrides the folder).
Without chromium and chromedriver these tests skip, saying so, on a developer's machine;
where KUBENAS_REQUIRE_BROWSER=1 or CI is set (.ci/run installs both) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from dashboard.local_source import LocalSource
from dashboard.server import make_server
from tests.dashboard.runs import REPO, curve_experiment, spawn

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(os.environ.get("KUBENAS_TEST_ARTIFACTS", REPO / "test-artifacts")) / "dashboard"


def _required() -> bool:
    return os.environ.get("KUBENAS_REQUIRE_BROWSER") == "1" or bool(os.environ.get("CI"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        reason = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        if _required():
            pytest.fail(reason + "; KUBENAS_REQUIRE_BROWSER/CI is set")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1100", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _click(driver: Any, css: str) -> None:
    """Find and click at one moment: tables are re-rendered whenever new data arrives."""
    assert driver.execute_script("const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;", css), css


def _shot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a page, not a blank
    return path


def _texts(driver: Any, css: str) -> list[str]:
    """The text of every match, read at one moment (the page re-renders tables as data arrives)."""
    return list(driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css))


def test_list_experiment_architecture_trial_and_log(browser: Any, runs_dir: Path, results: dict[str, Any]) -> None:
    from selenium.webdriver.common.by import By

    server = make_server(LocalSource([runs_dir]))
    try:
        url = f"http://127.0.0.1:{server.port}"
        browser.get(url + "/")
        names = _wait("the experiment list", lambda: _texts(browser, "#experiments tbody td:first-child a"))
        assert sorted(names) == ["curve-median", "nas-macro", "oneshot-macro"]
        # the markup-named work directory shows as text, and nothing of it ran
        assert "<img src=x onerror=alert(2)>" in browser.find_element(By.ID, "experiments").text
        assert browser.execute_script("return document.querySelectorAll('main img').length") == 0
        _shot(browser, "01-list")

        _click(browser, "#experiments tr[data-id='nas-macro'] a")
        _wait("the ENAS drawing", lambda: any(t.startswith("layer 0:") for t in
                                              _texts(browser, "#architecture .textpoint")))
        best = results["nas-macro"]["best_trial"]["name"]
        assert f"best trial {best}" in browser.find_element(By.ID, "arch-which").text
        rows = _wait("the trials table", lambda: browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr"))
        assert len(rows) == 3
        assert browser.find_elements(By.CSS_SELECTOR, "#objective-chart .main-svg")
        _shot(browser, "02-experiment-nas")

        other = next(t["name"] for t in results["nas-macro"]["trials"] if t["name"] != best)
        _click(browser, f"#trials tr[data-trial='{other}'] td:nth-child(2)")
        _wait("the selected trial's drawing",
              lambda: browser.find_element(By.ID, "arch-which").text == f"selected trial {other}")

        _click(browser, f"#trials tr[data-trial='{other}'] a")
        log = _wait("the trial's output", lambda: browser.find_element(By.ID, "log").text)
        assert "ops=" in log
        assert browser.find_element(By.ID, "trial-name").text == other
        _shot(browser, "03-trial-nas")

        browser.get(url + "/experiments/" + quote("<img src=x onerror=alert(2)>", safe=""))
        _wait("the curves", lambda: browser.find_elements(By.CSS_SELECTOR, "#curves-chart .scatterlayer .trace"))
        header = _texts(browser, "#trials thead th")
        assert header[:3] == ["trial", "status", "acc"]
        _click(browser, "#trials thead th[data-key='m:acc']")
        values = [float(text) for text in _texts(browser, "#trials tbody td:nth-child(3)")]
        assert values == sorted(values) and len(values) == 6
        box = browser.find_element(By.ID, "trial-filter")
        box.send_keys("EarlyStopped")
        _wait("the filter", lambda: len(browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")) == 2)
        browser.execute_script("document.getElementById('parcoords-chart').scrollIntoView()")
        _wait("the parallel coordinates", lambda: browser.find_elements(By.CSS_SELECTOR, "#parcoords-chart .parcoords"),
              timeout=120)  # WebGL: slow in a software renderer
        _shot(browser, "04-experiment-early-stopping")
    finally:
        server.stop()


def test_a_running_experiment_updates_without_reloading(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    root = tmp_path / "runs"
    root.mkdir()
    doc = curve_experiment("live-curve", levels=["0.5", "0.6", "0.7"], sleep=0.3, steps=60,
                           early_stopping=False, algorithm="random")
    proc = spawn(doc, root / "live-curve")
    server = make_server(LocalSource([root]))
    try:
        api = f"http://127.0.0.1:{server.port}/api/experiments/live-curve"
        _wait("the run's first trial", lambda: httpx.get(api).status_code == 200
              and httpx.get(api).json()["trials"], timeout=60)
        browser.get(f"http://127.0.0.1:{server.port}/experiments/live-curve")
        browser.execute_script("window.__notReloaded = true")
        first = _wait("the first row", lambda: len(browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")))
        assert browser.find_element(By.ID, "status").text == "Running"
        _wait("a new trial in the table", lambda: len(browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")) > first,
              timeout=60)
        assert browser.execute_script("return window.__notReloaded") is True
        _shot(browser, "05-experiment-live")

        running = _wait("a running trial", lambda: [t["name"] for t in httpx.get(api).json()["trials"]
                                                   if t["condition"] == "Running"], timeout=60)[0]
        browser.get(f"http://127.0.0.1:{server.port}/experiments/live-curve/trials/{running}")
        browser.execute_script("window.__notReloaded = true")
        def steps() -> int:
            return int(browser.execute_script("return document.getElementById('log').textContent.split('step=').length - 1"))

        seen = _wait("output", steps)
        _wait("the log to follow the trial", lambda: steps() > seen + 3, timeout=30)
        assert browser.execute_script("return window.__notReloaded") is True
        _shot(browser, "06-trial-live")
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
        _wait("the trial to end on its page", lambda: browser.find_element(By.ID, "status").text == "Succeeded")
    finally:
        server.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
