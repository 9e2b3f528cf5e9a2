"""More than one process: server CPU per pair-second with one process vs two, what a piped direction
costs, and Next -> first new-partner frame across processes vs within one, in one run.

    python benchmarks/cluster.py --pairs 3 --duration 20 --next-every 5

Starts its own ``redis-server`` (Debian's, on a free loopback port, no persistence; killed at the end)
and puts the same ``sfu loadtest`` load (N pairs of stamped, pre-encoded clients pressing Next) on,
one after the other:

- ``1 process``: one ``sfu serve --redis-url``: every pair is local;
- ``2 workers``: ``sfu serve --workers 2 --redis-url``: the clients all use the one port and the
  kernel spreads them over the workers, so about half the pairs cross;
- ``2 processes, split``: two ``sfu serve --redis-url`` on two ports with the clients dealt
  alternately (as two nodes behind a load balancer would get them): most pairs cross.

Server CPU is read from /proc for every server process (summed). The share of directions that cross
a pipe is sampled from each process's ``/healthz`` (``pipe.imports`` over paired participants) while
the load runs. Next -> first frame of the split run is told apart by whether the new partner was on
the same process. Then ``benchmarks/pipe.py`` measures a piped direction against a local one side by
side (both loads at the same moment), unless ``--pipe-seconds 0``.

Prints a table and the ratios against the targets: two processes carry >= 0.8 x 2 times one process's
pairs (CPU per pair-second at most 1.25 x one process's), and piping adds <= 25% CPU to a crossing pair.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent

#: How every server is started: no moderation classifier, never shedding newcomers (measured under
#: load), quiet logs, a short drain at the end.
SERVE_FLAGS = ["--log-level", "warning", "--max-loop-lag", "0", "--max-cpu", "0", "--moderation-classifier", "none",
               "--drain-timeout", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A port P with P and P + 1 free (a worker's admin port is base + its index)."""
    while True:
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_health(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 40.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dict(get_json(url + "/healthz"))
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{url} never answered; see {log}") from None
            time.sleep(0.2)


class Redis:
    """Debian's ``redis-server`` on a free loopback port, nothing saved; killed by :meth:`stop`."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        with open(directory / "redis.log", "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--dir", str(directory)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@dataclass
class Servers:
    """The server processes of one scenario: where clients go, whose CPU counts, whom to ask."""

    name: str
    urls: list[str]
    health_urls: list[str]
    pids: list[int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "sfu", "serve", "--host", "127.0.0.1", *args, *SERVE_FLAGS],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def start_one(redis: Redis, workdir: Path) -> Servers:
    port = free_port()
    log = workdir / "one.log"
    proc = serve(["--port", str(port), "--redis-url", redis.url, "--node-id", "one"], log)
    url = f"http://127.0.0.1:{port}"
    wait_health(url, proc, log)
    return Servers("1 process", [url], [url], [proc.pid], [proc])


def start_workers(redis: Redis, workdir: Path) -> Servers:
    port, admin = free_port(), free_port_pair()
    log = workdir / "workers.log"
    proc = serve(["--port", str(port), "--redis-url", redis.url, "--node-id", "w", "--workers", "2",
                  "--admin-port", str(admin)], log)
    health = [f"http://127.0.0.1:{admin + i}" for i in range(2)]
    pids = [int(wait_health(url, proc, log)["pid"]) for url in health]
    deadline = time.monotonic() + 20
    while get_json(health[0] + "/healthz").get("pool", {}).get("processes") != 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"the two workers never met in the pool; see {log}")
        time.sleep(0.2)
    return Servers("2 workers", [f"http://127.0.0.1:{port}"], health, pids, [proc])


def start_split(redis: Redis, workdir: Path) -> Servers:
    urls, procs = [], []
    for name in ("x", "y"):
        port = free_port()
        log = workdir / f"split-{name}.log"
        proc = serve(["--port", str(port), "--redis-url", redis.url, "--node-id", name], log)
        procs.append(proc)
        urls.append(f"http://127.0.0.1:{port}")
        wait_health(urls[-1], proc, log)
    return Servers("2 processes, split", urls, urls, [p.pid for p in procs], procs)


def error_text(errors: dict[str, int]) -> str:
    """The errors counted by the load test: the total, and how many of each kind."""
    total = sum(errors.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{kind} {n}" for kind, n in sorted(errors.items(), key=lambda e: -e[1])) + ")"


def crossing_sample(servers: Servers) -> Optional[tuple[int, int]]:
    """(piped directions, paired participants) over the scenario's processes right now."""
    imports = paired = 0
    for url in servers.health_urls:
        try:
            health = get_json(url + "/healthz")
        except OSError:
            return None
        imports += int(health.get("pipe", {}).get("imports", 0))
        paired += int(health["participants"]["paired"])
    return imports, paired


def load(servers: Servers, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run ``sfu loadtest`` against ``servers``, sampling the share of piped directions meanwhile."""
    out = workdir / f"{servers.name.replace(' ', '-').replace(',', '')}.json"
    cmd = [sys.executable, "-m", "sfu", "loadtest", "--pairs", str(args.pairs), "--duration", str(args.duration),
           "--next-every", str(args.next_every), "--resolution", args.resolution, "--fps", str(args.fps),
           "--bitrate", args.bitrate, "--json", str(out), "--quiet"]
    if args.no_decode:
        cmd += ["--no-decode"]
    for url in servers.urls:
        cmd += ["--url", url]
    for pid in servers.pids:
        cmd += ["--server-pid", str(pid)]
    print(f"== {servers.name}: sfu {' '.join(cmd[3:])}", flush=True)
    run = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples: list[tuple[int, int]] = []
    started = time.monotonic()
    while run.poll() is None:
        time.sleep(1.0)
        if time.monotonic() - started > args.duration + 300:
            run.kill()
        got = crossing_sample(servers)
        if got is not None and got[1] > 0:
            samples.append(got)
    output = run.stdout.read() if run.stdout else ""
    if run.returncode != 0 or not out.exists():
        raise SystemExit(f"the load test against {servers.name} failed:\n{output[-3000:]}")
    doc = json.loads(out.read_text())
    # The middle of the run (past the ramp, before the clients leave): the share of piped directions.
    middle = samples[len(samples) // 4: max(1, 3 * len(samples) // 4)] or samples
    crossing = sum(i for i, _ in middle) / sum(p for _, p in middle) if middle else None
    return {"doc": doc, "crossing": crossing}


def next_split(doc: dict[str, Any], processes: int) -> tuple[list[float], list[float]]:
    """Next -> first frame (ms), (within one process, across processes); client k used URL (k-1) % n."""
    within: list[float] = []
    across: list[float] = []
    for client in doc["clients"]:
        home = (client["sender"] - 1) % processes
        for took, partner in zip(client["next_to_first_frame_s"], client.get("next_partners", [])):
            if partner is None:
                continue
            (within if (partner - 1) % processes == home else across).append(took * 1000)
    return within, across


def percentile(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def p50_p95(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 0.5):.0f} / {percentile(values, 0.95):.0f} (n={len(values)})"


def cpu_per_pair_second(doc: dict[str, Any]) -> Optional[float]:
    server = doc["summary"].get("server") or {}
    value = server.get("cpu_seconds_per_pair_second")
    return float(value) if value else None


def pipe_side_by_side(args: argparse.Namespace) -> str:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "pipe.py"), "--pairs", str(args.pairs), "--seconds",
           str(args.pipe_seconds), "--warmup", "2"]
    print(f"== piped vs local side by side: python {' '.join(cmd[1:])}", flush=True)
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.pipe_seconds + 120)
    if run.returncode != 0:
        return f"(benchmarks/pipe.py failed: {run.stderr[-1500:]})"
    return run.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per scenario")
    parser.add_argument("--next-every", type=float, default=5.0)
    parser.add_argument("--resolution", default="640x480")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", default="800k")
    parser.add_argument("--no-decode", action="store_true",
                        help="clients recognise frames by their bytes instead of decoding them (a lighter load)")
    parser.add_argument("--pipe-seconds", type=float, default=8.0, help="benchmarks/pipe.py's measuring time (0: skip)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()

    results: dict[str, dict[str, Any]] = {}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sfu-cluster-bench-") as tmp:
        workdir = Path(tmp)
        redis = Redis(workdir)
        try:
            for start in (start_one, start_workers, start_split):
                servers = start(redis, workdir)
                try:
                    results[servers.name] = {"processes": len(servers.pids), "urls": len(servers.urls),
                                             **load(servers, args, workdir)}
                finally:
                    servers.stop()
        finally:
            redis.stop()
    pipe_report = pipe_side_by_side(args) if args.pipe_seconds > 0 else ""

    rows = []
    for name, result in results.items():
        summary = result["doc"]["summary"]
        cpu = cpu_per_pair_second(result["doc"])
        within, across = next_split(result["doc"], result["urls"])
        if result["urls"] == 1 and result["processes"] > 1:  # one shared port: who was where is unknown
            within, across = [], []
        every = [t * 1000 for c in result["doc"]["clients"] for t in c["next_to_first_frame_s"]]
        crossing = result["crossing"]
        rows.append([
            name, str(result["processes"]), "-" if cpu is None else f"{cpu * 1000:.0f}",
            "-" if not cpu else f"{1 / cpu:.1f}", "-" if crossing is None else f"{100 * crossing:.0f}%",
            "-" if summary["fps"]["p50"] is None else f"{summary['fps']['p50']:.1f}",
            p50_p95(every), p50_p95(within), p50_p95(across), error_text(summary["errors"]),
        ])
    header = ["scenario", "server processes", "CPU ms/pair-s", "pairs/core", "piped directions", "fps p50",
              "Next->frame ms p50/p95", "within one process", "across processes", "errors"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    print()
    print(f"{args.pairs} pairs, {args.resolution} @ {args.fps} fps {args.bitrate}, {args.duration:.0f} s each, "
          f"Next every {args.next_every:.0f} s, {os.cpu_count()} cores, load generator on the same machine"
          f"{' (frames recognised by their bytes, not decoded)' if args.no_decode else ''}")
    print("\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]))
    print()
    one = cpu_per_pair_second(results["1 process"]["doc"])
    for name in ("2 workers", "2 processes, split"):
        cpu, crossing = cpu_per_pair_second(results[name]["doc"]), results[name]["crossing"]
        if not one or not cpu:
            continue
        scale = one / cpu
        print(f"{name}: each process carries {scale:.2f} x the pairs per core of one process "
              f"(target >= 0.80): 2 cores -> {2 * scale:.2f} x one core's pairs (target >= 1.60)")
        if crossing:
            added = (cpu / one - 1) / crossing
            print(f"  {100 * crossing:.0f}% of directions piped: piping adds {100 * added:+.0f}% CPU to a crossing "
                  f"pair (target <= +25%)")
    split = results["2 processes, split"]["doc"]
    within, across = next_split(split, 2)
    one_every = [t * 1000 for c in results["1 process"]["doc"]["clients"] for t in c["next_to_first_frame_s"]]
    if across and one_every:
        print(f"Next -> first new-partner frame p50: across processes {percentile(across, 0.5):.0f} ms "
              f"(target <= 150), within one process {percentile(one_every, 0.5):.0f} ms; p95 "
              f"{percentile(across, 0.95):.0f} vs {percentile(one_every, 0.95):.0f} ms"
              + (f"; within one process in the split run {percentile(within, 0.5):.0f} ms" if within else ""))
    if pipe_report:
        print()
        print(pipe_report)
    print(f"\n(total {time.monotonic() - began:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({k: {"crossing": v["crossing"], "summary": v["doc"]["summary"]}
                                         for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
