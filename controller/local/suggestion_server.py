"""The suggestion server of a local run as a child process: a real `kubenas suggestion serve`.

The controller reaches algorithms only over gRPC (the import contract forbids importing
them), so `kubenas run` starts the same server a cluster runs in a pod, as a child process
in its own session (a terminal Ctrl-C reaches the runner, which decides what to stop), on
a free localhost port, and waits for its standard health check to say SERVING.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.grpc_clients import SuggestionServerError

__all__ = ["SuggestionServerProcess"]

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a child hook asking the kernel to SIGTERM the server when we die, even by
    SIGKILL: a server in its own session would otherwise outlive a killed runner."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return hook


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.lower().startswith("error:"):
            message = line[len("error:"):].strip()
            return message.removeprefix("--algorithm: ")
    return lines[-1] if lines else "no output"


class SuggestionServerProcess:
    """`with SuggestionServerProcess("random", state_dir, log_path) as address:` — the server lives inside.
    The clients that talk to it are `controller.grpc_clients`."""

    def __init__(self, algorithm: str, state_dir: Path, log_path: Path) -> None:
        self.algorithm, self.state_dir, self.log_path = algorithm, state_dir, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""
        self._started = 0.0

    def start(self) -> None:
        """Start the server process; `wait_ready` then blocks until it serves (start early, wait late)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        argv = [sys.executable, "-m", "kubenas", "suggestion", "serve", "--algorithm", self.algorithm,
                "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(self.state_dir)]
        with open(self.log_path, "ab") as sink:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                         # the hook only calls prctl through ctypes: no Python locks
                                         start_new_session=True, preexec_fn=_die_with_parent())

    def wait_ready(self) -> str:
        """Block until the health check says SERVING; returns the address. Raises SuggestionServerError."""
        for attempt in range(3):
            try:
                self._wait_serving()
                log.debug("suggestion server %s ready after %.2fs", self.address, time.monotonic() - self._started)
                return self.address
            except SuggestionServerError as exc:
                self.stop()
                output = self.log_path.read_text(errors="replace")
                # Another process may take the port between our probe and the server's bind.
                if "cannot listen" in output and attempt < 2:
                    log.info("port of %s was taken; retrying the suggestion server", self.address)
                    self.start()
                    continue
                raise SuggestionServerError(str(exc)) from None
        raise SuggestionServerError("could not find a free port for the suggestion server")

    def __enter__(self) -> str:
        self.start()
        return self.wait_ready()

    def _wait_serving(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    output = self.log_path.read_text(errors="replace")
                    raise SuggestionServerError(_last_error_line(output))
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        raise SuggestionServerError(f"the suggestion server did not become healthy within {STARTUP_TIMEOUT_S:.0f}s "
                                    f"(log: {self.log_path})")

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM) without waiting; `stop` later reaps it."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGTERM (the server stops gracefully), SIGKILL after 5 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5.0)
        except ProcessLookupError:
            pass

    def __exit__(self, *exc: object) -> None:
        self.stop()
