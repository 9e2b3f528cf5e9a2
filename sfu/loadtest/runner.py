"""The parent side of a load test: start the workers, follow the run, collect everything.

Every worker process is joined before :func:`run` returns (terminated, then killed, if it does not
exit by itself within a grace period); the run ends at ``go + duration`` even if workers hang.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .probe import ProcSample, fetch_metrics, read_proc
from .worker import Channels, Plan, worker_main

PREPARE_TIMEOUT_BASE = 60.0
PREPARE_TIMEOUT_PER_CLIENT = 6.0
FINISH_GRACE = 45.0


@dataclass
class RunOptions:
    plan: Plan
    workers: int
    #: Local server processes whose CPU and memory are read (summed; also kept per process).
    server_pids: tuple[int, ...] = ()
    metrics_url: Optional[str] = None
    progress: Callable[[str], None] = print


@dataclass
class Timeline:
    """Per-second aggregates over all workers (index 0 = first second after go)."""

    rows: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, tick: dict[str, Any]) -> dict[str, Any]:
        row = self.rows.setdefault(
            tick["second"],
            {"second": tick["second"], "connected": 0, "paired": 0, "receiving": 0, "frames": 0, "latencies": [],
             "pairings": 0, "errors": 0, "workers": 0, "generator_lateness_s": 0.0},
        )
        for key in ("connected", "paired", "receiving", "frames", "pairings"):
            row[key] += tick[key]
        row["latencies"] += tick["latencies"]
        row["errors"] += sum(tick["errors"].values())
        row["generator_lateness_s"] = max(row["generator_lateness_s"], tick["generator_lateness_s"])
        row["workers"] += 1
        return row


def _split(clients: int, workers: int) -> list[list[int]]:
    """Sender ids 1..clients dealt round-robin over the workers (so the ramp interleaves them)."""
    groups: list[list[int]] = [[] for _ in range(workers)]
    for i in range(clients):
        groups[i % workers].append(i + 1)
    return [g for g in groups if g]


def run(options: RunOptions) -> dict[str, Any]:
    plan = options.plan
    ctx = multiprocessing.get_context("spawn")
    channels = Channels(out=ctx.Queue(), go=ctx.Event(), go_time=ctx.Value("d", 0.0), stop=ctx.Event())
    groups = _split(plan.clients, max(1, min(options.workers, plan.clients)))
    procs = [
        ctx.Process(target=worker_main, args=(i, senders, plan, channels), name=f"sfu-loadtest-{i}", daemon=True)
        for i, senders in enumerate(groups)
    ]
    say = options.progress
    result: dict[str, Any] = {"workers": len(procs), "worker_errors": [], "clients": [], "prepare": []}
    timeline = Timeline()
    samples: list[ProcSample] = []
    per_process: dict[int, list[ProcSample]] = {pid: [] for pid in options.server_pids}
    try:
        for p in procs:
            p.start()
        say(f"preparing media for {plan.clients} clients in {len(procs)} worker processes...")
        deadline = time.monotonic() + PREPARE_TIMEOUT_BASE + PREPARE_TIMEOUT_PER_CLIENT * max(len(g) for g in groups)
        ready = 0
        while ready < len(procs):
            kind, index, payload = _get(channels, deadline, procs)
            if kind == "ready":
                ready += 1
                result["prepare"].append(payload)
            elif kind == "failed":
                raise RuntimeError(f"worker {index} failed while preparing: {payload['error']}\n{payload['trace']}")
        go = time.time() + 0.5
        channels.go_time.value = go
        channels.go.set()
        result["go_time"] = go
        end = go + plan.duration
        metrics_before = fetch_metrics(options.metrics_url) if options.metrics_url else None
        _sample(options, samples, per_process, go)
        done = 0
        finished: set[int] = set()
        last_printed = 0
        finish_deadline = end + FINISH_GRACE
        end_sampled = False
        while done < len(procs):
            now = time.time()
            if not end_sampled and now >= end:
                _sample(options, samples, per_process, now)
                end_sampled = True
                result["metrics_after"] = fetch_metrics(options.metrics_url) if options.metrics_url else None
            if now > finish_deadline:
                result["worker_errors"].append("workers did not finish in time; terminated")
                break
            try:
                kind, index, payload = channels.out.get(timeout=0.2)
            except queue.Empty:
                for i, p in enumerate(procs):
                    if i not in finished and p.exitcode not in (None, 0):
                        finished.add(i)
                        done += 1
                        result["worker_errors"].append(f"worker {i} exited with code {p.exitcode}")
                continue
            if kind == "tick":
                row = timeline.add(payload)
                if not end_sampled and row["workers"] == len(procs):
                    sample = _sample(options, samples, per_process, time.time())
                    row["server"] = _rate(samples) if sample else None
                if row["workers"] == len(procs) and row["second"] > last_printed:
                    last_printed = row["second"]
                    say(_progress_line(row, plan))
            elif kind == "done" and index not in finished:
                finished.add(index)
                done += 1
                result["clients"] += payload["clients"]
                result.setdefault("generator", []).append(
                    {"worker": index, "cpu_seconds": payload.get("cpu_seconds"), "wall_seconds": payload.get("wall_seconds")}
                )
            elif kind == "failed" and index not in finished:
                finished.add(index)
                done += 1
                result["worker_errors"].append(f"worker {index}: {payload['error']}")
        if not end_sampled:
            _sample(options, samples, per_process, time.time())
        result["metrics_before"] = metrics_before
        result.setdefault("metrics_after", None)
    finally:
        stop_workers(procs, channels)
        channels.out.close()
        channels.out.cancel_join_thread()
    result["timeline"] = [timeline.rows[k] for k in sorted(timeline.rows)]
    result["server_samples"] = [s.__dict__ for s in samples]
    result["server_process_samples"] = {str(pid): [s.__dict__ for s in got] for pid, got in per_process.items()}
    result["clients"].sort(key=lambda c: c["sender"])
    return result


def _get(channels: Channels, deadline: float, procs: list) -> tuple[str, int, Any]:
    while True:
        try:
            return channels.out.get(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except queue.Empty:
            dead = [i for i, p in enumerate(procs) if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"worker {dead[0]} exited with code {procs[dead[0]].exitcode} while preparing media") from None
            if time.monotonic() > deadline:
                raise TimeoutError("workers did not finish preparing media in time") from None


def _sample(
    options: RunOptions, samples: list[ProcSample], per_process: dict[int, list[ProcSample]], at: float
) -> Optional[ProcSample]:
    """Read every server process now; their sum joins ``samples`` only when all of them answered
    (a process gone or replaced would make the sum jump)."""
    if not options.server_pids:
        return None
    got = [read_proc(pid, at) for pid in options.server_pids]
    for pid, sample in zip(options.server_pids, got):
        if sample is not None:
            per_process[pid].append(sample)
    if any(sample is None for sample in got):
        return None
    total = ProcSample(
        at,
        sum(sample.cpu_seconds for sample in got if sample is not None),
        sum(sample.rss_bytes for sample in got if sample is not None),
    )
    samples.append(total)
    return total


def _rate(samples: list[ProcSample]) -> dict[str, float]:
    """Server CPU (in cores) since the previous sample, and current RSS."""
    if len(samples) < 2:
        return {"cpu_cores": 0.0, "rss_mb": samples[-1].rss_bytes / 2**20}
    a, b = samples[-2], samples[-1]
    dt = max(1e-6, b.at - a.at)
    return {"cpu_cores": (b.cpu_seconds - a.cpu_seconds) / dt, "rss_mb": b.rss_bytes / 2**20}


def _progress_line(row: dict[str, Any], plan: Plan) -> str:
    lat = sorted(row["latencies"])
    p50 = f"{lat[len(lat) // 2] * 1000:.0f}" if lat else "-"
    fps = row["frames"] / row["receiving"] if row["receiving"] else 0.0
    server = row.get("server")
    cpu = f" server CPU {server['cpu_cores'] * 100:.0f}% RSS {server['rss_mb']:.0f} MB" if server else ""
    return (
        f"[{row['second']:4d}s] clients {row['connected']}/{plan.clients} paired {row['paired']} "
        f"receiving {row['receiving']} fps/client {fps:4.1f} latency p50 {p50} ms "
        f"pairings {row['pairings']} errors {row['errors']}{cpu}"
    )


def stop_workers(procs: list[Any], channels: Channels, grace: float = 5.0) -> None:
    """Tell the client worker processes to stop and wait for them: terminated after ``grace``
    seconds, killed if that does not end them either."""
    channels.stop.set()
    for p in procs:
        p.join(timeout=grace)
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join()
