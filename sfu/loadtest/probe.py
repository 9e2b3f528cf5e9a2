"""Server-side measurements: CPU time and memory of a local process, optional Prometheus metrics."""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from typing import Optional

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcSample:
    at: float  #: wall-clock time of the sample
    cpu_seconds: float  #: user + system CPU of the process (and its reaped children)
    rss_bytes: int


def read_proc(pid: int, at: float) -> Optional[ProcSample]:
    """CPU seconds and RSS of ``pid`` from /proc; ``None`` if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    # Fields after the command name (which may contain spaces), counting from field 3 ("state").
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    rss_kb = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
            break
    return ProcSample(at, (utime + stime + cutime + cstime) / _TICKS, rss_kb * 1024)


def fetch_metrics(url: str, timeout: float = 2.0) -> Optional[dict[str, float]]:
    """Prometheus text exposition at ``url`` as {"name{labels}": value}; ``None`` if unavailable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            text = response.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return parse_prometheus(text)


def parse_prometheus(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "}" in line:
            name, _, rest = line.partition("}")
            name += "}"
        else:
            name, _, rest = line.partition(" ")
        parts = rest.split()
        if not parts:
            continue
        try:
            values[name.strip()] = float(parts[0])
        except ValueError:
            continue
    return values
