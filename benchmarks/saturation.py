"""Where one `sfu serve` process saturates: `sfu loadtest` with more and more pairs against one
server, its load read from `/healthz` once a second.

    python benchmarks/saturation.py --pairs 4,8,12,16 --duration 20

Prints, per step: the server's CPU (mean, in cores), event-loop lag (mean and worst of the 2 s
averages the overload guard sees), how long it declared itself overloaded, received fps and
latency p50/p95. The server runs with its default overload limits (`--max-loop-lag 0.05
--max-cpu 0.9`) unless `--serve-args` says otherwise; the load generator runs on the same machine,
so keep an eye on its own "generator" line in the logs written beside the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.capacity import free_port  # noqa: E402


def watch(url: str, stop: threading.Event, into: list[dict[str, Any]]) -> None:
    """Read the server's /healthz load once a second until ``stop``."""
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                into.append(json.loads(response.read())["load"])
        except OSError:
            continue


def step(url: str, pid: int, pairs: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    loads: list[dict[str, Any]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(url, stop, loads), daemon=True)
    watcher.start()
    report = out / f"pairs-{pairs}.json"
    with open(out / f"pairs-{pairs}.log", "w") as log:
        subprocess.run(
            [sys.executable, "-m", "sfu", "loadtest", "--url", url, "--pairs", str(pairs), "--duration",
             str(args.duration), "--server-pid", str(pid), "--json", str(report), "--quiet",
             *shlex.split(args.loadtest_args)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False,
        )
    stop.set()
    watcher.join()
    doc = json.loads(report.read_text()) if report.exists() else {"summary": {}}
    s = doc["summary"]
    lags = [x["loop_lag_seconds"] for x in loads if x.get("loop_lag_seconds") is not None]
    server = s.get("server") or {}
    return {
        "pairs": pairs,
        "cpu": server.get("cpu_cores_mean"),
        "lag_mean_ms": 1000 * sum(lags) / len(lags) if lags else None,
        "lag_worst_ms": 1000 * max(lags) if lags else None,
        "overloaded_s": sum(1 for x in loads if x.get("overloaded")),
        "fps": (s.get("fps") or {}).get("p50"),
        "latency_p50": (s.get("latency_ms") or {}).get("p50"),
        "latency_p95": (s.get("latency_ms") or {}).get("p95"),
        "errors": s.get("errors"),
    }


def fmt(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="4,8,12,16", help="comma-separated pair counts, one run each")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--serve-args", default="", help="extra `sfu serve` arguments")
    parser.add_argument("--loadtest-args", default="", help="extra `sfu loadtest` arguments")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="sfu-saturation-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(out / "serve.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "sfu", "serve", "--port", str(port), "--moderation-classifier", "none",
             "--max-participants", "0", *shlex.split(args.serve_args)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"server did not start; see {out / 'serve.log'}") from None
                time.sleep(0.2)
        rows = [step(url, server.pid, int(p), args, out) for p in args.pairs.split(",")]
    finally:
        server.terminate()
        server.wait(30)
    print(f"{'pairs':>5} | {'CPU cores':>9} | {'loop lag mean/worst ms':>22} | {'overloaded s':>12} | "
          f"{'fps p50':>7} | {'latency p50/p95 ms':>18} | errors")
    for r in rows:
        print(f"{r['pairs']:>5} | {fmt(r['cpu'], 2):>9} | {fmt(r['lag_mean_ms'], 1):>10} / {fmt(r['lag_worst_ms'], 1):>9} | "
              f"{r['overloaded_s']:>12} | {fmt(r['fps'], 1):>7} | {fmt(r['latency_p50']):>8} / {fmt(r['latency_p95']):>7} | "
              f"{r['errors'] or ''}")
    print(f"(logs and reports in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
