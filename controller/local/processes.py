"""Trials as local processes: start in their own session, tee output, signal the group.

Each trial's stdout and stderr go, merged, through one reader thread that appends every
line to the trial's log file (capped, see `CappedLog`) and hands it to the runner's event
queue. The queue is bounded: a trial printing faster than the runner parses waits, as it
would on a full pipe, instead of growing the runner's memory. The runner (one thread)
consumes the queue, so collectors and the store are only touched by one thread.
"""

from __future__ import annotations

import codecs
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LOG_PART_BYTES",
    "CappedLog",
    "GpuPool",
    "LaunchError",
    "LaunchSpec",
    "TrialEvent",
    "TrialProcess",
    "detect_gpus",
    "stop_all",
    "stop_escaped",
    "stop_orphan",
    "trial_environment",
]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
# stdout.log keeps a trial's first LOG_PART_BYTES; later output goes to stdout.log.1, which
# becomes stdout.log.2 (replacing it) each time it fills: at most 3 parts on disk, holding
# the start of the output and at least its last LOG_PART_BYTES.
LOG_PART_BYTES = 64 * 1024 * 1024


class CappedLog:
    """Appends a trial's output to `path` and its rotations, never more than 3 x `part_bytes`."""

    def __init__(self, path: Path, part_bytes: int = LOG_PART_BYTES) -> None:
        self.path, self.part_bytes = path, part_bytes
        for old in (self._part(1), self._part(2)):  # an earlier run's parts do not belong to this one
            old.unlink(missing_ok=True)
        self._file = open(path, "ab", buffering=0)
        self._size = self._file.tell()
        self._rotated = self._size >= part_bytes

    def _part(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def write(self, data: bytes) -> None:
        while data:
            room = self.part_bytes - self._size
            if room <= 0:
                self._next_part()
                continue
            self._file.write(data[:room])
            self._size += min(room, len(data))
            data = data[room:]

    def _next_part(self) -> None:
        if not self._rotated:
            self._file.write(f"\n[kubenas: stdout.log holds the first {self.part_bytes} bytes; the output goes on "
                             f"in {self._part(2).name} and then {self._part(1).name} (the latest)]\n".encode())
            self._rotated = True
        self._file.close()
        if self._part(1).exists():
            self._part(1).replace(self._part(2))
        self._file = open(self._part(1), "wb", buffering=0)
        self._size = 0

    def close(self) -> None:
        self._file.close()


class LaunchError(Exception):
    """The trial's command could not be started; the message is the trial's failure message."""


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one trial process (argv is never passed to a shell)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    log_path: Path


@dataclass(frozen=True)
class TrialEvent:
    """A piece of output (`line` set: any number of lines, maybe a partial one) or the end
    of a trial's output (`line` None)."""

    trial: str
    line: str | None
    at: float = field(default_factory=time.time)


class TrialProcess:
    """One running trial. Create with `start`; the reader thread posts `TrialEvent`s."""

    def __init__(self, name: str, spec: LaunchSpec, proc: subprocess.Popen[bytes], events: queue.Queue[TrialEvent]) -> None:
        self.name, self.spec, self.proc = name, spec, proc
        self.started = time.time()
        self.ended: float | None = None
        self.stop_requested = False
        # Events posted so far, and whether the reader holds one it could not queue yet: the
        # runner compares them with what it has handled to know if output is still on its way.
        self.posted = 0
        self.waiting_for_room = False
        self._reader = threading.Thread(target=self._pump, args=(events,), name=f"trial-{name}", daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, name: str, spec: LaunchSpec, events: queue.Queue[TrialEvent]) -> TrialProcess:
        """Start the process in a new session (its own process group); raise LaunchError if it cannot."""
        try:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            spec.log_path.touch()
        except OSError as exc:  # the trial fails with the reason; the run goes on
            raise LaunchError(f"cannot create its log {spec.log_path}: {exc.strerror or exc}") from None
        try:
            proc = subprocess.Popen(
                list(spec.argv),
                env=dict(spec.env),
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            if not Path(spec.cwd).is_dir():
                raise LaunchError(f"working directory not found: {spec.cwd}") from None
            raise LaunchError(f"command not found: {spec.argv[0]}") from None
        except PermissionError:
            raise LaunchError(f"command not executable: {spec.argv[0]}") from None
        except OSError as exc:
            raise LaunchError(f"cannot start {spec.argv[0]}: {exc.strerror or exc}") from None
        except ValueError as exc:  # a NUL byte in an argument or env value (an assignment may hold one)
            raise LaunchError(f"cannot start {spec.argv[0]}: {exc}; a process cannot receive a NUL byte") from None
        return cls(name, spec, proc, events)

    def _pump(self, events: queue.Queue[TrialEvent]) -> None:
        assert self.proc.stdout is not None
        # Chunks, not lines: readline() would hold a trial's endless line (a progress bar
        # without newlines, a dumped blob) in memory whole. The collector reassembles lines.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        read = getattr(self.proc.stdout, "read1", self.proc.stdout.read)
        sink = CappedLog(self.spec.log_path)
        try:
            while raw := read(_CHUNK):
                sink.write(raw)
                text = decoder.decode(raw)
                if text:
                    self._post(events, TrialEvent(self.name, text))
            tail = decoder.decode(b"", final=True)
            if tail:
                self._post(events, TrialEvent(self.name, tail))
        finally:
            sink.close()
        self.proc.stdout.close()
        # Usually the process exits as its output ends; post the end only then, so the runner
        # wakes exactly once, with the exit status ready. (A leader that exits while a child
        # keeps the pipe open is caught by the runner's own poll.)
        self.proc.wait()
        self._post(events, TrialEvent(self.name, None))

    def _post(self, events: queue.Queue[TrialEvent], event: TrialEvent) -> None:
        self.waiting_for_room = True
        events.put(event)  # blocks while the queue is full
        self.posted += 1
        self.waiting_for_room = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def returncode(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit status, or None if still running after `timeout` seconds."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.ended is None:
            self.ended = time.time()
        return code

    def join_output(self, timeout: float) -> bool:
        """Wait for the reader to reach the end of output; False if a child still holds it open."""
        self._reader.join(timeout)
        return not self._reader.is_alive()

    def signal_group(self, sig: int) -> None:
        """Send `sig` to the trial's whole process group (its children too); ignore if gone."""
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_all(trials: Sequence[TrialProcess], grace_s: float) -> None:
    """SIGTERM every group, wait up to `grace_s` in total, then SIGKILL what is left."""
    for trial in trials:
        # one that already ended on its own keeps its own outcome (not Killed)
        trial.stop_requested = trial.returncode() is None
        trial.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for trial in trials:
        if trial.wait(max(0.0, deadline - time.monotonic())) is None:
            log.info("trial %s did not stop within %.1fs of SIGTERM; sending SIGKILL", trial.name, grace_s)
            trial.signal_group(signal.SIGKILL)
            trial.wait(5.0)
        else:
            # the leader exited; children left in its group must not outlive the run
            trial.signal_group(signal.SIGKILL)


def detect_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """GPU ids to hand out, one per trial, found without importing torch.

    CUDA_VISIBLE_DEVICES, when set, is authoritative ("" or "-1" means none); otherwise
    `nvidia-smi -L` is asked; no nvidia-smi means no GPUs.
    """
    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [item.strip() for item in visible.split(",") if item.strip()]
        return [] if not ids or ids[0] == "-1" else ids
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    if smi is None:
        return []
    try:
        result = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    count = sum(1 for line in result.stdout.splitlines() if line.startswith("GPU "))
    return [str(i) for i in range(count)] if result.returncode == 0 else []


class GpuPool:
    """Hands out one GPU id per trial; with no GPUs every request gets None and never blocks."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = tuple(ids)
        self._free = list(ids)
        self._held: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.ids)

    def available(self) -> int | None:
        """Free GPUs, or None when there are no GPUs at all (no limit)."""
        return len(self._free) if self.ids else None

    def acquire(self, trial: str) -> str | None:
        if not self.ids:
            return None
        if not self._free:
            raise RuntimeError("no free GPU; check available() first")
        gpu = self._free.pop(0)
        self._held[trial] = gpu
        return gpu

    def release(self, trial: str) -> None:
        gpu = self._held.pop(trial, None)
        if gpu is not None:
            self._free.append(gpu)


def trial_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment with this interpreter's bin directory first on PATH, so `python` in a
    trial command is the interpreter kubenas runs on (its virtual environment)."""
    env = dict(os.environ if base is None else base)
    bindir = os.path.dirname(sys.executable)
    if bindir:
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def stop_orphan(trial: str, pid_json: str | None) -> None:
    """Kill the process group of a trial left running by a runner that died (SIGKILL, power).

    Only a process that is provably that trial (its environment holds KATIB_TRIAL_NAME=<trial>,
    readable on Linux for our own processes) is touched, so a reused pid is never hit.
    """
    if pid_json is None:
        return
    pid = int(pid_json)
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return  # gone, not ours, or no /proc: nothing we may safely kill
    if f"KATIB_TRIAL_NAME={trial}".encode() in environ:
        log.info("stopping trial %s (pid %d) left running by an earlier kubenas run", trial, pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def stop_escaped(trial: str) -> int:
    """SIGKILL processes of `trial` that left its process group (setsid, double fork).

    In a pod they would die with the container; here they would outlive the trial and the
    run. They are found by the KATIB_TRIAL_NAME=<trial> every trial process inherits
    (Linux /proc; elsewhere nothing is done). Returns how many were signalled.
    """
    marker = f"KATIB_TRIAL_NAME={trial}".encode()
    me = os.getpid()
    killed = 0
    try:
        pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        if pid == me:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if marker in environ:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    if killed:
        log.info("trial %s: stopped %d process(es) that had left its process group", trial, killed)
    return killed
