"""Benchmark: automatic detection in a live server — its CPU cost, classifier latency, how fast a
flagged picture hides the video, and what the pre-screen adds to Next.

Each mode starts its own server process (``tests/moderated_serve.py``, i.e. ``sfu serve`` with the
mode's moderation settings) and drives ``2 * --pairs + 1`` headless clients from this process
(stamped VP8 video + Opus): ``--pairs`` pairs chat and one person waits. Every ``--next-every``
seconds a paired client presses Next; its partner is paired with the one waiting, and the time from
the Next to each of the two new partners' first frame from the other is recorded.

Modes, in one run:

- ``off``: no classifier (the camera rule on, as by default);
- ``on``: NudeNet (or ``--classifier``), the default interval (10 s), pre-screen on;
- ``on, no pre-screen``: the same without the pre-screen;
- ``flag``: the marker test classifier (NudeNet cannot be shown nudity here): one client draws the
  marker at a random moment between two samples, ``--flags`` times; server side, picture taken →
  video hidden (``sfu_moderation_hide_seconds``), client side, marker drawn → the partner's last
  frame from it (waiting for the next sample included).

Server CPU is the server process and its classifier workers (utime + stime from /proc) over the
steady-state window, per pair-second. Classifier latency is ``histogram_quantile`` over
``sfu_moderation_classifier_seconds`` (submit to verdict: downscale, queue, transfer, model).
Prints a table. Not a test: figures depend on the machine and on whatever else runs on it.

    python benchmarks/moderation_live.py --pairs 2 --seconds 40 --next-every 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sfu.headless.client import HeadlessClient  # noqa: E402
from sfu.moderation.classifiers import nudenet_installed  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


# -- the server process ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, moderation: dict[str, Any], log_path: str, *extra: str) -> None:
        """``moderation``: ModerationSettings fields. Reports, strikes and bans go to a fresh database
        beside the log, and nobody is banned during a run (the flag rounds flag the same client again)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        moderation = {"data_dir": os.path.splitext(log_path)[0] + "-data", "strikes_before_ban": 1_000_000,
                      **moderation}
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "moderated_serve.py"), json.dumps(moderation), "serve",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", *extra],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start; see {log_path}") from None
                time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """utime + stime of the server and every process below it (classifier workers)."""
        total, todo = 0.0, [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / TICKS
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo += [int(c) for c in f.read().split()]
            except OSError:
                continue
        return total

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def quantile(metrics: dict[str, float], name: str, q: float) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q."""
    buckets = sorted(
        (float(k.split('le="')[1].split('"')[0]), v) for k, v in metrics.items() if k.startswith(name + "_bucket{")
    )
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-9)
        lower_bound, lower_count = bound, count
    return None


# -- the clients -------------------------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    cpu_ms_per_pair_second: float = 0.0
    next_to_frame: list[float] = field(default_factory=list)
    latency_p50: float | None = None
    latency_p95: float | None = None
    samples: float = 0.0
    dropped: float = 0.0
    prescreen_p50: float | None = None
    timeouts: float = 0.0
    hide_server: list[float] = field(default_factory=list)
    hide_client: list[float] = field(default_factory=list)


async def connect_all(url: str, count: int, args: argparse.Namespace) -> list[HeadlessClient]:
    clients = [HeadlessClient(url, i + 1, width=args.width, height=args.height, fps=args.fps) for i in range(count)]
    await asyncio.gather(*(c.connect(timeout=60) for c in clients))
    await asyncio.gather(*(c.wait_connected(timeout=60) for c in clients))
    return clients


def partner_of(client: HeadlessClient) -> str | None:
    """The client's current partner, from the messages it received."""
    partner = None
    for _, m in client.received.messages:
        if m["type"] == "paired":
            partner = m["partner"]
        elif m["type"] in ("partner_left", "waiting", "idle"):
            partner = None
    return partner


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def settle(clients: list[HeadlessClient], pairs: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for c in clients if partner_of(c)) < 2 * pairs:
        if time.monotonic() > deadline:
            raise RuntimeError("clients did not pair")
        await asyncio.sleep(0.1)


async def run_mode(mode: str, moderation: dict[str, Any], args: argparse.Namespace, workdir: str) -> Result:
    result = Result(mode)
    server = Server(moderation, os.path.join(workdir, f"server-{mode.replace(' ', '-').replace(',', '')}.log"),
                    "--rematch-cooldown", "0")  # the pressed-away partner always meets the one waiting
    clients: list[HeadlessClient] = []
    try:
        clients = await connect_all(server.url, 2 * args.pairs + 1, args)
        by_id = {c.id: c for c in clients}
        for c in clients:
            await c.start()
        await settle(clients, args.pairs)
        await asyncio.sleep(2.0)  # everyone's first samples and keyframes are behind us
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        end = t0 + args.seconds
        while time.monotonic() + args.next_every < end:
            await asyncio.sleep(args.next_every)
            paired = [c for c in clients if partner_of(c)]
            waiting = [c for c in clients if not partner_of(c)]
            if not paired or len(waiting) != 1:
                continue
            presser = random.choice(paired)
            old, newcomer = by_id[partner_of(presser)], waiting[0]  # type: ignore[index]
            pressed = time.monotonic()
            await presser.next()
            try:
                got = await asyncio.gather(
                    old.wait_frame_from(newcomer.sender_id, since=pressed, timeout=10),
                    newcomer.wait_frame_from(old.sender_id, since=pressed, timeout=10),
                )
                result.next_to_frame += [f.at - pressed for f in got]
            except Exception as exc:  # noqa: BLE001
                print(f"  [{mode}] a Next did not complete: {exc}", file=sys.stderr)
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        elapsed = time.monotonic() - t0
        result.cpu_ms_per_pair_second = (server.cpu_seconds() - cpu0) * 1000 / (args.pairs * elapsed)
        m = server.metrics()
        result.latency_p50 = quantile(m, "sfu_moderation_classifier_seconds", 0.5)
        result.latency_p95 = quantile(m, "sfu_moderation_classifier_seconds", 0.95)
        result.prescreen_p50 = quantile(m, "sfu_moderation_prescreen_seconds", 0.5)
        result.samples = sum(v for k, v in m.items() if k.startswith("sfu_moderation_samples_classified_total"))
        result.dropped = sum(v for k, v in m.items() if k.startswith("sfu_moderation_samples_dropped_total"))
        result.timeouts = m.get("sfu_moderation_prescreen_timeouts_total", 0.0)
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        server.stop()
    return result


async def run_flags(args: argparse.Namespace, workdir: str) -> Result:
    """One client draws the marker; time until its partner no longer gets its pictures. Two clients,
    no rematch cooldown: after each round the partner presses Next and meets the flagger again in a
    new conversation (pre-screened again)."""
    result = Result("flag (marker)")
    server = Server({"moderation_classifier": "marker", "moderation_interval": args.flag_interval},
                    os.path.join(workdir, "server-flag.log"), "--rematch-cooldown", "0")
    clients: list[HeadlessClient] = []
    try:
        clients = await connect_all(server.url, 2, args)
        flagger, partner = clients
        for c in clients:
            await c.start()
        await settle(clients, 1)
        for round_ in range(args.flags):
            pairings = len(flagger.messages("paired"))
            await until(lambda n=pairings: partner_of(flagger) is not None and len(flagger.messages("paired")) >= n, 20,
                        "the flagger to be paired")
            await partner.wait_frame_from(flagger.sender_id, since=time.monotonic(), timeout=20)
            await asyncio.sleep(random.uniform(0, args.flag_interval))  # anywhere between two samples
            seen = len(partner.messages("moderation"))
            hide_sum = server.metrics().get("sfu_moderation_hide_seconds_sum", 0.0)
            flagger.show_marker()
            drawn = time.monotonic()
            await until(lambda p=partner, n=seen: len(p.messages("moderation")) > n, 10 * args.flag_interval + 10,
                        f"round {round_}: the partner to be told")
            await asyncio.sleep(0.5)
            last = max((f.at for f in partner.frames_since(drawn) if f.stamp and f.stamp.sender == flagger.sender_id),
                       default=drawn)
            result.hide_client.append(last - drawn)
            result.hide_server.append(server.metrics()["sfu_moderation_hide_seconds_sum"] - hide_sum)
            flagger.show_marker(False)
            await asyncio.sleep(1.0)  # clean pictures again before the next partner's pre-screen
            await partner.next()  # a new conversation with the flagger
            await until(lambda n=pairings: len(flagger.messages("paired")) > n, 20, "a new conversation")
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        server.stop()
    return result


# -- report ------------------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def table(results: list[Result], flags: Result | None, off: Result) -> str:
    lines = [
        "| mode | server CPU ms per pair-second | vs off | classifier latency p50 / p95 ms | samples (dropped) "
        "| Next → first new-partner frame p50 / p95 ms | pre-screen hold p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.cpu_ms_per_pair_second:.1f} | {r.cpu_ms_per_pair_second - off.cpu_ms_per_pair_second:+.1f} "
            f"| {ms(r.latency_p50)} / {ms(r.latency_p95)} | {r.samples:.0f} ({r.dropped:.0f}) "
            f"| {ms(pct(r.next_to_frame, 50))} / {ms(pct(r.next_to_frame, 95))} (n={len(r.next_to_frame)}) "
            f"| {ms(r.prescreen_p50)} |"
        )
    if flags is not None:
        lines += [
            "",
            "| flagged picture → partner's video hidden | p50 ms | max ms |",
            "|---|---|---|",
            f"| server: picture taken → hidden (n={len(flags.hide_server)}) | {ms(pct(flags.hide_server, 50))} "
            f"| {ms(max(flags.hide_server, default=None))} |",
            f"| client: marker drawn → partner's last frame of it (n={len(flags.hide_client)}) "
            f"| {ms(pct(flags.hide_client, 50))} | {ms(max(flags.hide_client, default=None))} |",
        ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    classifier = args.classifier or ("nudenet" if nudenet_installed() else "marker")
    workdir = tempfile.mkdtemp(prefix="sfu-moderation-live-")
    modes = [
        ("off", {"moderation_classifier": "none"}),
        (f"{classifier}, interval {args.interval:g} s, pre-screen", {
            "moderation_classifier": classifier, "moderation_interval": args.interval}),
        (f"{classifier}, interval {args.interval:g} s, no pre-screen", {
            "moderation_classifier": classifier, "moderation_interval": args.interval, "moderation_prescreen": False}),
    ]
    wanted = set(args.modes.split(","))
    modes = [m for m, key in zip(modes, ("off", "on", "noprescreen")) if key in wanted]
    results = []
    for mode, moderation in modes:
        print(f"running {mode} ...", file=sys.stderr, flush=True)
        results.append(await run_mode(mode, moderation, args, workdir))
    flags = None
    if args.flags and "flag" in wanted:
        print("running flag (marker) ...", file=sys.stderr, flush=True)
        flags = await run_flags(args, workdir)
    print(f"\n{args.pairs} pairs + 1 waiting, {args.width}x{args.height} {args.fps} fps, {args.seconds:g} s per mode, "
          f"Next every {args.next_every:g} s; server logs in {workdir}\n")
    print(table(results, flags, results[0] if results else Result("none")))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--seconds", type=float, default=40.0, help="steady state per mode")
    p.add_argument("--next-every", type=float, default=4.0, help="seconds between two Nexts")
    p.add_argument("--interval", type=float, default=10.0, help="moderation interval of the 'on' modes")
    p.add_argument("--classifier", default=None, help="classifier of the 'on' modes (default: nudenet if installed)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--flags", type=int, default=5, help="marker rounds for flagged → hidden (0: skip)")
    p.add_argument("--modes", default="off,on,noprescreen,flag", help="which parts to run (comma-separated)")
    p.add_argument("--flag-interval", type=float, default=2.0, help="moderation interval of the marker rounds")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
