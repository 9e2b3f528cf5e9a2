"""Where a forwarded packet's CPU goes inside the running server, under `sfu loadtest` load.

    python benchmarks/packet_profile.py --pairs 8 --seconds 15

``benchmarks/packet_floor.py`` times the per-packet work in a tight loop, where every cache is warm
and the receiving socket is read by the same thread. This one measures the real thing: ``sfu serve
--forwarding packet`` in its own process, ``sfu loadtest --no-decode`` clients paired and streaming
without Next (every pair paired for the whole window), and over a window after the ramp:

- the server's CPU time (``/proc``) and the packets it forwarded (its ``sfu_forwarded_packets``
  metric, sampled every second), hence CPU per forwarded packet (one received, one sent) and per
  pair-second in steady state (no connection set-up in it, unlike ``sfu loadtest``'s own figure);
- with ``perf`` installed and allowed (root, or ``kernel.perf_event_paranoid`` ≤ 1), how that CPU
  splits between the Python interpreter, the kernel (``recvfrom``/``sendto`` on loopback, and
  waking the clients), libsrtp, libc and the rest, each as µs per forwarded packet;
- the budget per forwarded packet that 50 pairs per core would leave.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.capacity import free_port, start_target, stop  # noqa: E402
from sfu.loadtest.probe import fetch_metrics, read_proc  # noqa: E402

#: Groups of shared objects, by a pattern of their name in ``perf report --sort dso``.
GROUPS: tuple[tuple[str, str], ...] = (
    ("Python interpreter (libpython, CPython's own C modules)", r"libpython|python3|cpython-3\d+-|_cffi_backend"),
    ("kernel (socket calls on loopback, waking clients, scheduling)", r"\[kernel|\[vdso\]"),
    ("libsrtp (pylibsrtp's binding, OpenSSL inside)", r"_binding"),
    ("libc (malloc, memmove, epoll)", r"libc\.so|ld-linux"),
)
OTHER = "other (encoders of the placeholder picture, numpy, ...)"
#: Server CPU per pair-second at 50 pairs per core.
BUDGET_MS = 20.0


def cpu_seconds(pid: int) -> float:
    """The process's CPU seconds so far (every thread), as ``sfu loadtest --server-pid`` reads them."""
    sample = read_proc(pid, time.time())
    if sample is None:
        raise RuntimeError(f"process {pid} is gone")
    return sample.cpu_seconds


def forwarded_packets(port: int) -> float:
    """The server's ``sfu_forwarded_packets`` counter, all kinds together."""
    metrics = fetch_metrics(f"http://127.0.0.1:{port}/metrics", timeout=5)
    if metrics is None:
        raise RuntimeError(f"no /metrics on port {port}")
    return sum(v for k, v in metrics.items() if k.startswith("sfu_forwarded_packets_total{"))


def perf_usable() -> bool:
    if shutil.which("perf") is None:
        return False
    try:
        paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    except (OSError, ValueError):
        return False
    return os.geteuid() == 0 or paranoid <= 1


def perf_split(data: Path) -> dict[str, float]:
    """Share of samples per group (fractions summing to 1)."""
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio"], capture_output=True, text=True, check=True
    ).stdout
    shares: dict[str, float] = {}
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S.*)$", line)
        if not m:
            continue
        share, dso = float(m.group(1)) / 100, m.group(2).strip()
        group = next((name for name, pattern in GROUPS if re.search(pattern, dso)), OTHER)
        shares[group] = shares.get(group, 0.0) + share
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the measured window")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the window (default: ramp + 5)")
    parser.add_argument("--no-perf", action="store_true", help="skip the split by shared object")
    args = parser.parse_args()

    ramp = max(1.0, args.pairs * 2 / 5)
    warmup = args.warmup if args.warmup is not None else ramp + 5
    duration = warmup + args.seconds + 5
    use_perf = not args.no_perf and perf_usable()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sfu-packet-profile-") as tmp:
        workdir = Path(tmp)
        server = start_target("packet", port, workdir / "server.log", ("--stats-interval", "1"))
        load = subprocess.Popen(
            [sys.executable, "-m", "sfu", "loadtest", "--url", f"http://127.0.0.1:{port}", "--pairs", str(args.pairs),
             "--duration", str(duration), "--ramp", str(ramp), "--no-decode", "--quiet"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(warmup)
            cpu0, packets0, t0 = cpu_seconds(server.pid), forwarded_packets(port), time.monotonic()
            if use_perf:
                subprocess.run(
                    ["perf", "record", "-F", "1999", "-p", str(server.pid), "-o", str(workdir / "perf.data"),
                     "--", "sleep", str(args.seconds)],
                    capture_output=True, check=True,
                )
            else:
                time.sleep(args.seconds)
            time.sleep(1.2)  # one more metrics sample, so the packet count covers the whole window
            cpu1, packets1, t1 = cpu_seconds(server.pid), forwarded_packets(port), time.monotonic()
            shares = perf_split(workdir / "perf.data") if use_perf else {}
        finally:
            load.wait(duration + 120)
            stop(server)
    window = t1 - t0
    cpu = cpu1 - cpu0
    packets = packets1 - packets0
    if packets <= 0:
        print("no packets forwarded in the window: did the load test start? (try a longer --warmup)")
        return 1
    per_packet = cpu / packets * 1e6
    per_pair_second = cpu / (args.pairs * window) * 1e3
    packets_per_pair_second = packets / (args.pairs * window)
    print(f"{args.pairs} pairs, steady state (no Next), {window:.1f} s window, {os.cpu_count()} cores")
    print(f"server CPU {cpu / window * 100:.0f}% of a core, {packets / window:.0f} packets forwarded per second "
          f"({packets_per_pair_second:.0f} per pair-second)")
    print("| per forwarded packet (received and sent) | µs | ms per pair-second |")
    print("|---|---|---|")
    for name in [g for g, _ in GROUPS] + [OTHER]:
        if name in shares:
            print(f"| {name} | {per_packet * shares[name]:.1f} | {per_pair_second * shares[name]:.1f} |")
    print(f"| **all** | **{per_packet:.1f}** | **{per_pair_second:.1f}** (~{1000 / per_pair_second:.0f} pairs per core) |")
    budget = BUDGET_MS / packets_per_pair_second * 1e3
    print(f"50 pairs per core leaves {budget:.0f} µs per forwarded packet, {per_packet / budget:.2f}x less than now")
    if not shares:
        print("(no split by shared object: perf is not installed or not allowed; see --help)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
