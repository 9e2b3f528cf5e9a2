"""``--plot``: a PNG of received fps, latency and server CPU over the run (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PlotUnavailable(RuntimeError):
    pass


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib: pip install 'sfu[loadtest]' (or pip install matplotlib)"
        ) from None


def write_plot(doc: dict[str, Any], path: Path) -> None:
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["timeline"]
    t = [r["second"] for r in rows]
    fps = [r["frames"] / r["receiving"] if r["receiving"] else 0.0 for r in rows]
    p50 = [r["latency_ms"]["p50"] for r in rows]
    p95 = [r["latency_ms"]["p95"] for r in rows]
    cpu = [(r.get("server") or {}).get("cpu_cores") for r in rows]
    settings = doc["settings"]

    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    ax = axes[0]
    ax.plot(t, fps, label="received fps per receiving client")
    ax.plot(t, [r["paired"] / 2 for r in rows], label="pairs", linestyle="--")
    ax.axhline(settings["fps"], color="grey", linewidth=0.5)
    ax.set_ylabel("fps / pairs")
    ax.legend(loc="lower right", fontsize="small")
    ax = axes[1]
    ax.plot(t, [v if v is not None else float("nan") for v in p50], label="p50")
    ax.plot(t, [v if v is not None else float("nan") for v in p95], label="p95")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="upper right", fontsize="small")
    ax = axes[2]
    if any(v is not None for v in cpu):
        ax.plot(t, [v * 100 if v is not None else float("nan") for v in cpu], color="tab:red")
        ax.set_ylabel("server CPU (% of a core)")
    else:
        ax.text(0.5, 0.5, "server CPU not measured (use --server-pid)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("seconds since start")
    fig.suptitle(
        f"sfu loadtest: {settings['pairs']} pairs, {settings['resolution']} @ {settings['fps']} fps, {settings['url']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
