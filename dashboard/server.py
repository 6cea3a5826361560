"""Serving the dashboard: `make_server` binds (port 0 picks a free one) and runs uvicorn in
a thread, for tests and benchmarks; `serve` runs it in the foreground until Ctrl-C/SIGTERM."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence

import uvicorn

from dashboard.app import create_app
from dashboard.source import DataSource

__all__ = ["DashboardServer", "bind", "make_server", "serve"]

log = logging.getLogger(__name__)


class DashboardServer:
    """A running dashboard in a background thread; `stop()` ends it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int) -> None:
        self.server, self.thread, self.port = server, thread, port

    def stop(self, timeout_s: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; OSError (address in use, no such host) is the caller's to report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def _config(source: DataSource, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(create_app(source), log_level="warning" if quiet else "info", access_log=not quiet,
                          lifespan="off", timeout_graceful_shutdown=2)


def make_server(source: DataSource, host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> DashboardServer:
    """Start serving `source` in a thread; returns once it accepts connections."""
    sock = bind(host, port)
    server = uvicorn.Server(_config(source, quiet))
    sockets: Sequence[socket.socket] = [sock]
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True, name="dashboard")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError("the dashboard server did not start")
    return DashboardServer(server, thread, sock.getsockname()[1])


def serve(source: DataSource, host: str, port: int) -> None:
    """Serve until interrupted (uvicorn handles SIGINT and SIGTERM)."""
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    log.info("kubenas dashboard on http://%s:%d/", shown, sock.getsockname()[1])
    uvicorn.Server(_config(source, quiet=False)).run(sockets=[sock])
