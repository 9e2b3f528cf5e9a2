"""Benchmark: classifier latency per sample, NudeNet on 640x480 frames, inline vs in the process pool.

For each mode, ``--samples`` headless-client video frames (640x480 yuv420p, what a decoder hands the
server) are classified one after another, after ``--warmup`` unmeasured ones:

- ``inline``: downscale + classify in this process (what the event loop would suffer if it did the
  work itself);
- ``pool``: :class:`sfu.moderation.sampler.ClassifierPool` with ``--workers`` processes; latency is
  from ``submit`` to the result back on the event loop, "on loop" is the time ``submit`` itself
  holds the event loop (downscale + hand-over).

CPU per sample counts this process and, for the pool, its worker processes (from /proc). Prints a
table. Not a test: figures depend on the machine and on whatever else runs on it.

    python benchmarks/moderation.py --samples 100
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sfu.headless.stamp import Stamp, make_background, make_frame
from sfu.moderation.classifiers import (
    ClassifierSettings,
    build_classifier,
    plan_classifier,
)
from sfu.moderation.classifiers.image import to_rgb
from sfu.moderation.sampler import ClassifierPool

WIDTH, HEIGHT = 640, 480
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    mode: str
    latencies: list[float]
    on_loop: list[float]
    compute: list[float]
    cpu_s: float
    flagged: int


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def frames(count: int) -> list:
    background = make_background(WIDTH, HEIGHT)
    return [make_frame(Stamp(7, i % 65536, i), WIDTH, HEIGHT, background) for i in range(count)]


def run_inline(settings: ClassifierSettings, samples: int, warmup: int) -> Row:
    plan = plan_classifier(settings)
    classifier = build_classifier(plan)
    pictures = frames(samples + warmup)
    for frame in pictures[:warmup]:
        classifier.classify(to_rgb(frame, plan.input_side))
    latencies, compute = [], []
    flagged = 0
    cpu0 = time.process_time()
    for frame in pictures[warmup:]:
        t0 = time.perf_counter()
        rgb = to_rgb(frame, plan.input_side)
        t1 = time.perf_counter()
        flagged += classifier.classify(rgb).flagged
        t2 = time.perf_counter()
        latencies.append(t2 - t0)
        compute.append(t2 - t1)
    cpu = time.process_time() - cpu0
    return Row("inline", latencies, latencies, compute, cpu / samples, flagged)


async def run_pool(settings: ClassifierSettings, samples: int, warmup: int, workers: int) -> Row:
    plan = plan_classifier(settings)
    before = {p.pid for p in multiprocessing.active_children()}
    pool = ClassifierPool(plan, workers=workers, queue_limit=4)
    started = time.perf_counter()
    await pool.start()
    print(f"pool of {workers} worker(s) ready in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    pictures = frames(samples + warmup)
    try:
        for frame in pictures[:warmup]:
            await pool.classify(frame)
        pids = [p.pid for p in multiprocessing.active_children() if p.pid not in before and p.pid]
        cpu0 = time.process_time() + sum(proc_cpu(pid) for pid in pids)
        latencies, on_loop, compute = [], [], []
        flagged = 0
        for frame in pictures[warmup:]:
            t0 = time.perf_counter()
            future = pool.submit(frame)
            on_loop.append(time.perf_counter() - t0)
            assert future is not None, "dropped with an empty queue"
            sample = await future
            assert sample.verdict is not None, sample.error
            latencies.append(sample.latency_s)
            compute.append(sample.compute_s)
            flagged += sample.verdict.flagged
        cpu = time.process_time() + sum(proc_cpu(pid) for pid in pids) - cpu0
    finally:
        await pool.close()
    return Row(f"pool ({workers} worker)", latencies, on_loop, compute, cpu / samples, flagged)


def table(rows: list[Row], samples: int) -> str:
    header = (
        "| mode | samples | latency p50 / p95 | classify p50 / p95 | on event loop p50 / p95 "
        "| CPU per sample | flagged |"
    )
    lines = [header, "|---|---|---|---|---|---|---|"]

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f}"

    for r in rows:
        lines.append(
            f"| {r.mode} | {samples} | {ms(pct(r.latencies, 50))} / {ms(pct(r.latencies, 95))} ms "
            f"| {ms(pct(r.compute, 50))} / {ms(pct(r.compute, 95))} ms "
            f"| {ms(pct(r.on_loop, 50))} / {ms(pct(r.on_loop, 95))} ms "
            f"| {ms(r.cpu_s)} ms | {r.flagged} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per classifier")
    parser.add_argument("--classifier", default="nudenet", help="nudenet (default) or marker")
    args = parser.parse_args()
    settings = ClassifierSettings(kind=args.classifier, threads=args.threads)
    print(plan_classifier(settings).description, file=sys.stderr)
    rows = [run_inline(settings, args.samples, args.warmup)]
    rows.append(asyncio.run(run_pool(settings, args.samples, args.warmup, args.workers)))
    load = os.getloadavg()[0]
    print(
        f"\n{args.classifier} on {WIDTH}x{HEIGHT} yuv420p frames, {args.threads} onnxruntime "
        f"thread(s), {os.cpu_count()} cores, load average {load:.1f}\n"
    )
    print(table(rows, args.samples))
    print(
        f"\nA sample every 10 s per publisher costs about "
        f"{rows[1].cpu_s * 1000 / 10 * 2:.1f} ms of CPU per pair-second (two publishers)."
    )


if __name__ == "__main__":
    main()
