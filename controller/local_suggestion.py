"""The suggestion server of a local run: a real `kubenas suggestion serve` process and its client.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kubenas.api.v1beta1 import api_pb2, api_pb2_grpc
from kubenas.early_stopping import RuleError, StopRule, rule_from_proto
from kubenas.proto_convert import GRPC_MESSAGE_OPTIONS, MAX_SUGGESTIONS_PER_REQUEST

__all__ = [
    "EarlyStoppingClient",
    "LocalSuggestionServer",
    "SuggestionClient",
    "SuggestionReply",
    "SuggestionServerError",
]

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0


class SuggestionServerError(Exception):
    """The server could not start or answered with an error; the message says why."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class SuggestionReply:
    """New assignments (possibly with algorithm-chosen names and labels); `exhausted` when the
    algorithm said no more will come (grid)."""

    assignments: tuple[api_pb2.GetSuggestionsReply.ParameterAssignments, ...]
    exhausted: bool


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


class LocalSuggestionServer:
    """`with LocalSuggestionServer("random", state_dir) as address:` — the server lives inside."""

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
                                         start_new_session=True, preexec_fn=_die_with_parent())  # noqa: PLW1509

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


class SuggestionClient:
    """Katib's Suggestion service client: validation and batches of new assignments."""

    def __init__(self, address: str, timeout_s: float = 600.0) -> None:
        self.channel = grpc.insecure_channel(address, options=GRPC_MESSAGE_OPTIONS)
        self.stub = api_pb2_grpc.SuggestionStub(self.channel)
        self.timeout_s = timeout_s

    def validate(self, experiment: api_pb2.Experiment) -> None:
        """Raise SuggestionServerError (code INVALID_ARGUMENT for bad settings) if rejected."""
        try:
            self.stub.ValidateAlgorithmSettings(
                api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment), timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise SuggestionServerError(exc.details() or str(exc.code()), exc.code()) from None

    def suggest(self, experiment: api_pb2.Experiment, trials: Sequence[api_pb2.Trial],
                current: int, total: int) -> SuggestionReply:
        """Ask for `current` new assignments (at most MAX_SUGGESTIONS_PER_REQUEST; the caller
        asks again for the rest). OUT_OF_RANGE with trailing metadata `remaining` (a grid
        running out) is retried once with what remains; zero remaining is `exhausted`."""
        if current > MAX_SUGGESTIONS_PER_REQUEST:
            total -= current - MAX_SUGGESTIONS_PER_REQUEST
            current = MAX_SUGGESTIONS_PER_REQUEST
        while True:
            request = api_pb2.GetSuggestionsRequest(experiment=experiment, trials=list(trials),
                                                    current_request_number=current, total_request_number=total)
            try:
                reply = self.stub.GetSuggestions(request, timeout=self.timeout_s)
                return SuggestionReply(tuple(reply.parameter_assignments), exhausted=False)
            except grpc.RpcError as exc:
                if exc.code() is not grpc.StatusCode.OUT_OF_RANGE:
                    raise SuggestionServerError(exc.details() or str(exc.code()), exc.code()) from None
                remaining = _remaining(exc)
                if remaining <= 0 or remaining >= current:
                    return SuggestionReply((), exhausted=True)
                total -= current - remaining
                current = remaining

    def close(self) -> None:
        self.channel.close()


class EarlyStoppingClient:
    """Katib's EarlyStopping service client (the suggestion server serves it on its own port
    too): settings validation and the rules running trials must obey, computed from the
    observation logs in the DBManager at `db_address`."""

    def __init__(self, address: str, db_address: str, timeout_s: float = 120.0) -> None:
        self.channel = grpc.insecure_channel(address, options=GRPC_MESSAGE_OPTIONS)
        self.stub = api_pb2_grpc.EarlyStoppingStub(self.channel)
        self.db_address, self.timeout_s = db_address, timeout_s

    def validate(self, spec: api_pb2.EarlyStoppingSpec) -> None:
        """Raise SuggestionServerError (code INVALID_ARGUMENT for bad settings) if rejected."""
        try:
            self.stub.ValidateEarlyStoppingSettings(
                api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=spec), timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise SuggestionServerError(exc.details() or str(exc.code()), exc.code()) from None

    def rules(self, experiment: api_pb2.Experiment, trials: Sequence[api_pb2.Trial]) -> tuple[StopRule, ...]:
        """The current rules (empty before the algorithm has enough finished trials).
        Raises SuggestionServerError if the call fails or a rule cannot be applied."""
        request = api_pb2.GetEarlyStoppingRulesRequest(experiment=experiment, trials=list(trials),
                                                       db_manager_address=self.db_address)
        try:
            reply = self.stub.GetEarlyStoppingRules(request, timeout=self.timeout_s)
            return tuple(rule_from_proto(r) for r in reply.early_stopping_rules)
        except grpc.RpcError as exc:
            raise SuggestionServerError(exc.details() or str(exc.code()), exc.code()) from None
        except RuleError as exc:
            raise SuggestionServerError(f"unusable early stopping rule: {exc}") from None

    def close(self) -> None:
        self.channel.close()


def _remaining(exc: grpc.RpcError) -> int:
    for key, value in (exc.trailing_metadata() or ()):  # type: ignore[attr-defined]
        if key == "remaining":
            try:
                return int(value)
            except (TypeError, ValueError):
                return 0
    return 0
