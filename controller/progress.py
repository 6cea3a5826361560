"""What `kubenas run` shows while it works.

On a terminal: a `rich.live.Live` view with a bar of trials done out of maxTrialCount, the
elapsed time and an estimate of the time left, the counts, the best trial so far and a
table of running trials (elapsed time, latest metrics), redrawn a few times a second.
Anywhere else (a pipe, a CI log): one plain line per trial start and finish, and a
`progress:` line with the same estimate whenever a trial completes, so logs stay greppable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from controller.logic import TrialCounts
from controller.store import TrialRow
from kubenas.metrics import MetricPoint
from kubenas.printable import printable
from kubenas.trials import Objective

__all__ = ["CURVE_POINTS", "CURVE_TRIALS", "Curve", "Progress", "duration_text", "time_left"]

# progress.png's curves: at most this many points per trial (older ones thinned out evenly),
# for the last CURVE_TRIALS trials; a trial that prints millions of metric lines costs the
# same as one that prints a thousand, and nothing is read back from the store at the end.
CURVE_POINTS = 512
CURVE_TRIALS = 100


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(value: float | str) -> str:
    if isinstance(value, str):  # a text metric (a genotype) is cut; results.json has it whole
        return _clip(printable(value), 40)
    return f"{value:.6g}"


def duration_text(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`: short enough for a status line."""
    s = int(max(seconds, 0.0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def time_left(elapsed_s: float, done: int, remaining: int) -> float | None:
    """Seconds until `remaining` more trials complete at the pace of the `done` ones so far
    (parallel trials included, as the pace is measured on the wall clock); None before the first."""
    if done <= 0 or remaining < 0:
        return None
    return elapsed_s / done * remaining


class Curve:
    """One trial's objective over its reports, thinned to at most CURVE_POINTS (report, value) points."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []
        self.reports = 0
        self._stride = 1

    def add(self, value: float) -> None:
        self.reports += 1
        if (self.reports - 1) % self._stride:
            return
        self.points.append((self.reports, value))
        if len(self.points) >= CURVE_POINTS:
            self.points = self.points[::2]
            self._stride *= 2


class Progress:
    """Receives runner events; renders live on a terminal, as log lines elsewhere.

    Use as a context manager around the run; every method is cheap and never raises.
    """

    def __init__(self, console: Console, experiment: str, objective: Objective, max_trials: int | None) -> None:
        self.console, self.experiment, self.objective, self.max_trials = console, experiment, objective, max_trials
        self.live_mode = console.is_terminal
        self._running: dict[str, tuple[float, dict[str, float | str]]] = {}
        self._counts = TrialCounts()
        self._best: TrialRow | None = None
        self._live: Live | None = None
        self._since = time.monotonic()
        self._done_before: int | None = None  # trials a resumed run had already completed
        self._last_logged = -1
        self.curves: dict[str, Curve] = {}  # the objective per report of the trials run here

    def __enter__(self) -> Progress:
        self._since = time.monotonic()
        if self.live_mode:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True,
                              get_renderable=self._render)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # --- events -------------------------------------------------------------------------
    def started(self, row: TrialRow, gpu: str | None = None) -> None:
        self._running[row.name] = (time.monotonic(), {})
        if not self.live_mode:
            # long values (an nn_config) are cut here; results.json has them whole
            args = " ".join(f"{k}={_clip(v)}" for k, v in row.assignments.items())
            where = f" gpu={gpu}" if gpu is not None else ""
            self._line(f"trial {row.name} started{where}: {args}")

    def metrics(self, name: str, values: Mapping[str, float | str]) -> None:
        if name in self._running:
            self._running[name][1].update(values)

    def points(self, name: str, points: Sequence[MetricPoint]) -> None:
        """Metric points as collected, in order: the latest values and the objective's curve."""
        self.metrics(name, {p.name: p.value for p in points})
        objective = [p.value for p in points if p.name == self.objective.metric_name and not isinstance(p.value, str)]
        if objective:
            curve = self.curves.pop(name, None) or Curve()
            self.curves[name] = curve  # (re)inserted last: the oldest trials' curves go first
            for value in objective:
                curve.add(float(value))
            if len(self.curves) > CURVE_TRIALS:
                del self.curves[next(iter(self.curves))]

    def objective_curves(self) -> dict[str, list[tuple[int, float]]]:
        """(report, value) points of each trial's objective, for `controller.report.plot_progress`."""
        return {name: list(curve.points) for name, curve in self.curves.items()}

    def finished(self, row: TrialRow) -> None:
        self._running.pop(row.name, None)
        if not self.live_mode:
            value = row.observation.get(self.objective.metric_name)
            shown = f" {self.objective.metric_name}={_fmt(value)}" if value is not None else ""
            took = f" in {row.duration_s:.1f}s" if row.duration_s is not None else ""
            why = f" ({row.message})" if row.message and row.condition.value != "Succeeded" else ""
            self._line(f"trial {row.name} {row.condition.value}{shown}{took}{why}")

    def status(self, counts: TrialCounts, best: TrialRow | None) -> None:
        self._counts, self._best = counts, best
        if self._done_before is None:
            self._done_before = counts.completed
        if not self.live_mode and self.max_trials is not None and counts.completed != self._last_logged:
            if self._last_logged >= 0:
                self._line(f"progress: {self._estimate()}")
            self._last_logged = counts.completed

    def _estimate(self) -> str:
        """`3/12 trials done, 1m20s elapsed, about 4m00s left`."""
        c = self._counts
        elapsed = time.monotonic() - self._since
        text = f"{c.completed}/{self.max_trials} trials done, {duration_text(elapsed)} elapsed"
        if self.max_trials is None:
            return text.replace("/None", "")
        left = time_left(elapsed, c.completed - (self._done_before or 0), self.max_trials - c.completed)
        return text + (f", about {duration_text(left)} left" if left else "")

    def note(self, message: str) -> None:
        self._line(message)

    def _line(self, text: str) -> None:
        text = printable(text)  # assignments, trial output and messages quoted in it reach a terminal
        if self._live is not None:
            self.console.print(text, soft_wrap=True, markup=False, highlight=False)
        else:
            # plain lines for logs: rich's renderer costs milliseconds per line
            self.console.file.write(text + "\n")
            self.console.file.flush()

    # --- live rendering -----------------------------------------------------------------
    def _render(self) -> Group:
        c = self._counts
        limit = f"/{self.max_trials}" if self.max_trials is not None else ""
        # the counts that are not zero, so the line fits 80 columns (the bar line has done/total)
        parts = [f"{c.completed}{limit} done" if self.max_trials is None else "", f"{c.running} running"]
        parts += [f"{n} {label}" for n, label in ((c.succeeded, "succeeded"), (c.failed, "failed"),
                                                  (c.metrics_unavailable, "no metrics"), (c.killed, "killed"),
                                                  (c.early_stopped, "early stopped")) if n]
        header = Text(f"{self.experiment}: " + ", ".join(p for p in parts if p))
        bar: list[Table] = []
        if self.max_trials is not None:
            line = Table.grid(padding=(0, 1))
            line.add_row(ProgressBar(total=float(self.max_trials), completed=float(c.completed), width=24),
                         Text(self._estimate(), style="cyan"))
            bar = [line]
        if self._best is not None:
            value = self._best.observation.get(self.objective.metric_name)
            best = Text(f"best: {self._best.name} {self.objective.metric_name}="
                        f"{'' if value is None else _fmt(value)}", style="green")
        else:
            best = Text("best: (none yet)", style="dim")
        table = Table(box=None, pad_edge=False)
        table.add_column("running trial")
        table.add_column("elapsed", justify="right")
        table.add_column("latest metrics")
        now = time.monotonic()
        for name, (since, values) in list(self._running.items()):
            shown = " ".join(f"{printable(k)}={_fmt(v)}" for k, v in values.items())
            table.add_row(name, f"{now - since:.1f}s", Text(shown))  # Text: a genotype's brackets are no markup
        return Group(*bar, header, best, table)
