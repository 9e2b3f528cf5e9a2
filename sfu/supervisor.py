"""``sfu serve --workers N``: a small parent process running N worker processes on one HTTP port.

Each worker is an ordinary ``sfu serve`` (``python -m sfu serve <the same arguments> --workers 1
--worker-id I --reuse-port``): it binds the shared port with SO_REUSEPORT, so the kernel spreads new
connections over the workers, and a visit's WebSocket and media stay in the worker that accepted it.
The media port range is split between the workers, and each gets its own admin port (base + I).

The parent imports nothing of the media stack and serves nothing itself. It restarts a worker that
exits unexpectedly (after a growing delay; it gives up, stopping everything, after repeated
immediate crashes), forwards SIGTERM and SIGINT to every worker (each drains as a single server
does), and exits once they all have. Workers die with the parent should it be killed outright.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from . import __version__
from .config import Config

log = logging.getLogger(__name__)

#: Seconds past drain_grace + drain_timeout the parent waits for workers before killing them
#: (a worker ends itself 5 s past its drain timeout).
STOP_MARGIN = 10.0
#: Seconds between two looks at the workers.
POLL_INTERVAL = 0.05
#: Exit status of ``sfu serve`` for an unusable configuration: restarting cannot help.
EXIT_CONFIG = 2
_PR_SET_PDEATHSIG = 1


# -- the plan: what each worker is told --------------------------------------------------------------
def split_port_range(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """``low``-``high`` cut into ``parts`` contiguous slices, as equal as possible (the first ones
    one port larger); ``ValueError`` when there are fewer ports than parts."""
    total = high - low + 1
    if parts < 1 or total < parts:
        raise ValueError(f"cannot split {total} ports between {parts} workers")
    size, extra = divmod(total, parts)
    out, start = [], low
    for i in range(parts):
        end = start + size + (1 if i < extra else 0) - 1
        out.append((start, end))
        start = end + 1
    return out


@dataclass(frozen=True)
class WorkerPlan:
    """One worker: its index (its ``--worker-id``) and its full ``python -m sfu`` arguments."""

    index: int
    argv: tuple[str, ...]


def worker_plans(config: Config, base_argv: Sequence[str]) -> list[WorkerPlan]:
    """The workers of ``config``: the parent's own arguments (``serve ...``), then the flags that
    make each one a worker (later flags win, so these override the parent's)."""
    count = config.worker_count()
    port_range = config.media_port_range()
    slices = split_port_range(*port_range, count) if port_range else None
    plans = []
    for i in range(count):
        extra = ["--workers", "1", "--worker-id", str(i), "--reuse-port"]
        if slices is not None:
            extra += ["--port-range", "%d-%d" % slices[i]]
        if config.admin_port:
            extra += ["--admin-port", str(config.admin_port + i)]
        plans.append(WorkerPlan(i, (*base_argv, *extra)))
    return plans


# -- restarts --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestartPolicy:
    """When to start a worker again after it exited on its own."""

    #: A worker that ran at least this long did not crash "immediately": its count starts over.
    stable_after: float = 10.0
    first_delay: float = 0.5
    max_delay: float = 10.0
    #: Consecutive immediate crashes after which the parent gives up.
    give_up_after: int = 5

    def delay(self, quick_crashes: int) -> Optional[float]:
        """Seconds to wait before the next start after ``quick_crashes`` consecutive immediate
        crashes (0 after a worker that had run a while); ``None``: give up."""
        if quick_crashes >= self.give_up_after:
            return None
        if quick_crashes == 0:
            return self.first_delay
        return min(self.max_delay, self.first_delay * 2 ** (quick_crashes - 1))


@dataclass
class Slot:
    """One worker's place: its current process and its crash history."""

    plan: WorkerPlan
    process: Optional[subprocess.Popen[bytes]] = None
    started_at: float = 0.0
    quick_crashes: int = 0
    restart_at: Optional[float] = None
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)

    def exited(self, code: int, now: float, policy: RestartPolicy) -> Optional[float]:
        """Record an unexpected exit at ``now``; the restart delay, or ``None`` to give up."""
        self.process = None
        self.exit_codes.append(code)
        ran = now - self.started_at
        self.quick_crashes = self.quick_crashes + 1 if ran < policy.stable_after else 0
        delay = policy.delay(self.quick_crashes)
        self.restart_at = None if delay is None else now + delay
        return delay


def describe_exit(code: int) -> str:
    """``status 3`` or ``signal SIGKILL`` (Popen's negative codes are signals)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


# -- the parent --------------------------------------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to send this worker SIGTERM when the parent dies (Linux), so that a parent
    killed outright leaves no worker behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):
        pass


def spawn_worker(plan: WorkerPlan) -> subprocess.Popen[bytes]:
    """Start one worker: ``python -m sfu <argv>``, sharing the parent's output and environment, in
    its own process group (a terminal's Ctrl-C reaches only the parent, which forwards it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "sfu", *plan.argv], process_group=0, preexec_fn=_die_with_parent
    )


class Supervisor:
    """Runs the workers until told to stop (:meth:`request_stop`) or one keeps crashing."""

    def __init__(
        self,
        plans: Sequence[WorkerPlan],
        *,
        stop_timeout: float,
        policy: RestartPolicy = RestartPolicy(),
        spawn: Callable[[WorkerPlan], subprocess.Popen[bytes]] = spawn_worker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = [Slot(plan) for plan in plans]
        self.stop_timeout = stop_timeout
        self.policy = policy
        self.spawn = spawn
        self.clock = clock
        self._stop_signal: Optional[int] = None
        self._stopping_since: Optional[float] = None
        self.exit_code = 0

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop every worker with ``signum`` (they drain) and return from :meth:`run` once they exit."""
        if self._stop_signal is None:
            self._stop_signal = signum

    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self.slots if slot.process is not None]

    def run(self) -> int:
        for slot in self.slots:
            self._start(slot, self.clock())
        while True:
            now = self.clock()
            if self._stop_signal is not None and self._stopping_since is None:
                self._begin_stop(now)
            self._watch(now)
            if self._stopping_since is not None:
                if all(slot.process is None for slot in self.slots):
                    return self.exit_code
                if now - self._stopping_since > self.stop_timeout:
                    self._kill_all()
                    return 1
            time.sleep(POLL_INTERVAL)

    # -- steps -----------------------------------------------------------------------------------
    def _start(self, slot: Slot, now: float) -> None:
        slot.process = self.spawn(slot.plan)
        slot.started_at = now
        slot.restart_at = None
        log.info(
            "worker %d started (pid %d)", slot.plan.index, slot.process.pid,
            extra={"event": "worker_started", "worker": slot.plan.index, "pid": slot.process.pid},
        )

    def _watch(self, now: float) -> None:
        for slot in self.slots:
            if slot.process is not None:
                code = slot.process.poll()
                if code is not None:
                    self._exited(slot, code, now)
            elif slot.restart_at is not None and now >= slot.restart_at and self._stopping_since is None:
                slot.restarts += 1
                self._start(slot, now)

    def _exited(self, slot: Slot, code: int, now: float) -> None:
        assert slot.process is not None
        pid = slot.process.pid
        if self._stopping_since is not None:
            slot.process = None
            slot.exit_codes.append(code)
            if code != 0:
                self.exit_code = 1
            log.info("worker %d (pid %d) stopped with %s", slot.plan.index, pid, describe_exit(code),
                     extra={"event": "worker_stopped", "worker": slot.plan.index, "pid": pid, "status": code})
            return
        if code == EXIT_CONFIG:
            slot.process, delay = None, None
            slot.exit_codes.append(code)
        else:
            delay = slot.exited(code, now, self.policy)
        if delay is None:
            why = "its configuration is unusable" if code == EXIT_CONFIG else (
                f"{slot.quick_crashes} crashes in a row, each within {self.policy.stable_after:g} s of starting")
            log.error(
                "worker %d (pid %d) exited with %s: giving up (%s); stopping every worker",
                slot.plan.index, pid, describe_exit(code), why,
                extra={"event": "worker_given_up", "worker": slot.plan.index, "pid": pid, "status": code},
            )
            self.exit_code = EXIT_CONFIG if code == EXIT_CONFIG else 1
            self.request_stop(signal.SIGTERM)
            return
        log.warning(
            "worker %d (pid %d) exited with %s; restarting it in %.1f s",
            slot.plan.index, pid, describe_exit(code), delay,
            extra={"event": "worker_exited", "worker": slot.plan.index, "pid": pid, "status": code, "delay": delay},
        )

    def _begin_stop(self, now: float) -> None:
        assert self._stop_signal is not None
        self._stopping_since = now
        name = signal.Signals(self._stop_signal).name
        log.info("%s: stopping %d workers", name, len(self.pids()), extra={"event": "shutdown", "signal": name})
        for slot in self.slots:
            slot.restart_at = None
            if slot.process is not None:
                try:
                    slot.process.send_signal(self._stop_signal)
                except ProcessLookupError:
                    pass

    def _kill_all(self) -> None:
        for slot in self.slots:
            if slot.process is not None:
                log.error("worker %d (pid %d) did not stop within %.0f s; killing it",
                          slot.plan.index, slot.process.pid, self.stop_timeout)
                slot.process.kill()
                slot.process.wait()
                slot.process = None


def port_in_use(host: str, port: int) -> Optional[str]:
    """Why ``host``:``port`` cannot be bound without SO_REUSEPORT (some other server holds it), or
    ``None``: workers must not silently join another program's listening group."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc}"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(address)
            except OSError as exc:
                return f"cannot listen on {host} port {port}: {exc.strerror or exc}"
    return None


def run(config: Config, base_argv: Sequence[str]) -> int:
    """Run ``sfu serve`` as a parent of ``config.worker_count()`` workers; the exit status."""
    from . import logs

    logs.setup(config.log_level, config.log_format)
    problem = port_in_use(config.host, config.port)
    if problem is not None:
        print(f"sfu: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    plans = worker_plans(config, base_argv)
    supervisor = Supervisor(plans, stop_timeout=config.drain_grace + config.drain_timeout + STOP_MARGIN)

    def on_signal(signum: int, frame: object) -> None:
        supervisor.request_stop(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheme = "https" if config.tls_cert else "http"
        log.info(
            "sfu %s: %d workers on %s://%s:%d", __version__, len(plans), scheme, config.host, config.port,
            extra={"event": "supervisor", "workers": len(plans)},
        )
        code = supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped", extra={"event": "stopped", "status": code})
    return code
