"""The dashboard's web application: HTML pages and the JSON API over one `DataSource`.

Pages are rendered on the server with Jinja2 (autoescape on: every name and value from an
experiment is user text) and carry their first data as JSON; `static/dashboard.js` draws
the charts with plotly.js and polls the API every 2 s so a page follows a running
experiment without reloading. Errors are a page (or a JSON object under /api) naming what
was asked for and what exists — never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from dashboard.architecture import draw, find
from dashboard.source import DataSource, NotFound, SourceError

__all__ = ["POLL_MS", "create_app"]

log = logging.getLogger(__name__)

POLL_MS = 2000
LOG_TAIL_BYTES = 64 * 1024
MAX_LOG_TAIL_BYTES = 1024 * 1024
_HERE = Path(__file__).resolve().parent
_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def plotly_js() -> Path:
    """plotly.min.js as the `plotly` wheel ships it (served, never fetched from a CDN)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["segment"] = lambda text: quote(str(text), safe="")
    return env


class _Api:
    """The handlers; each returns plain data or raises NotFound / SourceError / HTTPException."""

    def __init__(self, source: DataSource) -> None:
        self.source = source

    def experiments(self) -> dict[str, Any]:
        return {"experiments": [e.to_json() for e in self.source.experiments()],
                "problems": self.source.problems()}

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        detail = self.source.experiment(experiment_id)
        data = detail.to_json()
        best = next((t for t in detail.trials if t.name == detail.summary.best_trial), None)
        data["best_architecture"] = None
        if best is not None:
            found = find(best.assignments, best.observation)
            drawing = None if found is None else draw(found)
            if drawing is not None:
                data["best_architecture"] = {"trial": best.name, **drawing.to_json()}
            elif detail.is_nas:  # a one-shot search prints what it found: read the trial's output
                data["best_architecture"] = self._architecture(experiment_id, best.name)
        return data

    def curves(self, experiment_id: str) -> dict[str, Any]:
        return {"curves": self.source.curves(experiment_id)}

    def _architecture(self, experiment_id: str, trial_name: str) -> dict[str, Any] | None:
        detail = self.source.trial(experiment_id, trial_name)
        output: list[str] = []
        if "architecture" not in detail.trial.assignments:  # DARTS, enas-oneshot: the result is in the output
            output = self.source.log_tail(experiment_id, trial_name, LOG_TAIL_BYTES * 4).text.splitlines()
        found = find(detail.trial.assignments, detail.trial.observation, output, detail.nn_hints.get("genotype"))
        drawing = None if found is None else draw(found)
        return None if drawing is None else {"trial": trial_name, **drawing.to_json()}

    def trial(self, experiment_id: str, trial_name: str) -> dict[str, Any]:
        data = self.source.trial(experiment_id, trial_name).to_json()
        data["architecture"] = self._architecture(experiment_id, trial_name)
        return data

    def log(self, experiment_id: str, trial_name: str, max_bytes: int) -> dict[str, Any]:
        return self.source.log_tail(experiment_id, trial_name, max_bytes).to_json()


def _max_bytes(request: Request) -> int:
    raw = request.query_params.get("max_bytes", str(LOG_TAIL_BYTES))
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 1 <= value <= MAX_LOG_TAIL_BYTES:
        raise HTTPException(400, f"max_bytes: {raw[:40]!r} — must be an integer from 1 to {MAX_LOG_TAIL_BYTES}")
    return value


def create_app(source: DataSource, title: str = "kubenas dashboard", poll_ms: int = POLL_MS) -> Starlette:
    """The ASGI application serving `source`. Handlers are plain functions: Starlette runs
    them in its thread pool, so a slow read never stalls other requests."""
    api = _Api(source)
    env = _environment()

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(title=title, poll_ms=poll_ms, **context)
        return HTMLResponse(html, status_code=status)

    def error(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        return page("error.html", status, status_code=status, message=message)

    def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except NotFound as exc:
                return error(request, 404, str(exc))
            except SourceError as exc:
                return error(request, 503, str(exc))
            except HTTPException as exc:
                return error(request, exc.status_code, str(exc.detail))
            except Exception:  # a bug must still answer with a page, and be logged whole
                log.exception("dashboard: %s failed", request.url.path)
                return error(request, 500, "internal error while answering this request; the dashboard's log has "
                                           "the details")
        return run

    def param(request: Request, name: str) -> str:
        return str(request.path_params[name])

    def json_of(data: Any) -> JSONResponse:
        return JSONResponse(data, headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", guarded(lambda r: page("list.html", data=api.experiments()))),
        Route("/experiments/{experiment}", guarded(lambda r: page(
            "experiment.html", data=api.experiment(param(r, "experiment"))))),
        Route("/experiments/{experiment}/trials/{trial}", guarded(lambda r: page(
            "trial.html", data=api.trial(param(r, "experiment"), param(r, "trial"))))),
        Route("/api/experiments", guarded(lambda r: json_of(api.experiments()))),
        Route("/api/experiments/{experiment}", guarded(lambda r: json_of(api.experiment(param(r, "experiment"))))),
        Route("/api/experiments/{experiment}/curves",
              guarded(lambda r: json_of(api.curves(param(r, "experiment"))))),
        Route("/api/experiments/{experiment}/trials/{trial}",
              guarded(lambda r: json_of(api.trial(param(r, "experiment"), param(r, "trial"))))),
        Route("/api/experiments/{experiment}/trials/{trial}/log",
              guarded(lambda r: json_of(api.log(param(r, "experiment"), param(r, "trial"), _max_bytes(r))))),
        Route("/static/plotly.min.js", lambda r: FileResponse(plotly_js(), media_type="text/javascript",
                                                               headers={"Cache-Control": "max-age=86400"})),
        Route("/static/{name}", guarded(lambda r: _static(param(r, "name")))),
        Route("/healthz", lambda r: JSONResponse({"ok": True})),
        Route("/favicon.ico", lambda r: Response(status_code=204)),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(request, 404, f"no page {request.url.path[:200]!r}; start at /")

    app = Starlette(routes=routes, exception_handlers={404: not_found})
    app.state.source = source
    return app


def _static(name: str) -> Response:
    if name not in _STATIC:
        raise HTTPException(404, f"no static file {name[:80]!r}")
    return FileResponse(_HERE / "static" / name, media_type=_STATIC[name])

