"""Summaries of a load-test run: the JSON document and the terminal tables."""

from __future__ import annotations

from typing import Any, Optional

from .probe import ProcSample
from .stats import percentiles


def _flat(clients: list[dict], key: str) -> list[float]:
    out: list[float] = []
    for c in clients:
        value = c.get(key)
        if isinstance(value, list):
            out += value
        elif value is not None:
            out.append(value)
    return out


def _ms(stats: dict[str, Optional[float]]) -> dict[str, Optional[float]]:
    return {k: (v * 1000 if v is not None and k != "count" else v) for k, v in stats.items()}


def _client_media(c: dict) -> dict[str, Any]:
    m = c.get("media") or {}
    seconds = m.get("connected_seconds") or 0.0
    received = m.get("video_packets_received", 0)
    lost = m.get("video_packets_lost", 0)
    bytes_in = m.get("bytes_received", 0)
    bytes_out = m.get("bytes_sent", 0)
    return {
        "kbps_in": bytes_in * 8 / seconds / 1000 if seconds else None,
        "kbps_out": bytes_out * 8 / seconds / 1000 if seconds else None,
        "video_loss_pct": 100.0 * lost / (lost + received) if lost + received else None,
        "video_packets_lost": lost,
        "video_packets_received": received,
    }


def summarize(result: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    clients = result["clients"]
    for c in clients:
        c["derived"] = _client_media(c)
    errors: dict[str, int] = {}
    for c in clients:
        for kind, n in c["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    if result.get("worker_errors"):
        errors["worker"] = errors.get("worker", 0) + len(result["worker_errors"])
    pair_seconds = sum(c["paired_seconds"] for c in clients) / 2.0
    derived = [c["derived"] for c in clients]
    summary: dict[str, Any] = {
        "clients": len(clients),
        "clients_expected": settings["pairs"] * 2,
        "connected": sum(1 for c in clients if c["connected"]),
        "video_tracks_received": sum(1 for c in clients if c["frames_partner"] > 0),
        "audio_tracks_received": sum(1 for c in clients if c["audio_frames"] > 0),
        "pairings": sum(c["pairings"] for c in clients),
        "pairs_formed": sum(c["pairings"] for c in clients) / 2.0,
        "nexts_sent": sum(c["nexts_sent"] for c in clients),
        "pair_seconds": pair_seconds,
        "frames_received": sum(c["frames_partner"] for c in clients),
        "frames_stale": sum(c["frames_stale"] for c in clients),
        "frames_unstamped": sum(c["frames_unstamped"] for c in clients),
        "start_to_paired_ms": _ms(percentiles(_flat(clients, "start_to_paired_s"))),
        "paired_to_first_frame_ms": _ms(percentiles(_flat(clients, "paired_to_first_frame_s"))),
        "next_to_first_frame_ms": _ms(percentiles(_flat(clients, "next_to_first_frame_s"))),
        "latency_ms": _ms(percentiles(_flat(clients, "latency_s"))),
        "fps": percentiles(_flat(clients, "fps")),
        "freezes_per_client": percentiles(float(c["freezes"]) for c in clients),
        "freezes": sum(c["freezes"] for c in clients),
        "freeze_seconds": sum(c["freeze_seconds"] for c in clients),
        "kbps_in": percentiles(d["kbps_in"] for d in derived),
        "kbps_out": percentiles(d["kbps_out"] for d in derived),
        "video_loss_pct": percentiles(d["video_loss_pct"] for d in derived),
        "video_packets_lost": sum(d["video_packets_lost"] for d in derived),
        "generator_lateness_ms": _ms(percentiles(_flat(clients, "video_mean_lateness_s"))),
        "generator_skipped_slots": sum(c["video_skipped_slots"] for c in clients),
        "generator_frames_sent": sum(c["video_frames_sent"] for c in clients),
        "errors": errors,
    }
    generator = [g for g in result.get("generator", []) if g.get("cpu_seconds") is not None]
    if generator:
        busiest = max(g["cpu_seconds"] / max(1e-6, g["wall_seconds"]) for g in generator)
        summary["generator_cpu_seconds"] = sum(g["cpu_seconds"] for g in generator)
        summary["generator_busiest_worker_cpu"] = busiest  # fraction of one core
    summary["server"] = _server(result, pair_seconds, settings)
    server = summary["server"]
    if server and server.get("cpu_seconds") and summary["frames_received"]:
        # Per delivered frame, and what that projects to if every client got the full frame rate:
        # a server that falls behind delivers fewer frames, and so spends less CPU per pair-second.
        per_frame = server["cpu_seconds"] / summary["frames_received"]
        server["cpu_ms_per_frame"] = per_frame * 1000
        server["projected_pairs_per_core_at_full_fps"] = 1.0 / (per_frame * 2 * settings["fps"])
    return summary


def _server(result: dict[str, Any], pair_seconds: float, settings: dict[str, Any]) -> Optional[dict[str, Any]]:
    samples = [ProcSample(**s) for s in result.get("server_samples", [])]
    out: dict[str, Any] = {}
    if len(samples) >= 2:
        first, last = samples[0], samples[-1]
        cpu = last.cpu_seconds - first.cpu_seconds
        wall = max(1e-6, last.at - first.at)
        out.update(
            {
                "source": "proc",
                "cpu_seconds": cpu,
                "wall_seconds": wall,
                "cpu_cores_mean": cpu / wall,
                "rss_mb_start": first.rss_bytes / 2**20,
                "rss_mb_end": last.rss_bytes / 2**20,
                "rss_mb_peak": max(s.rss_bytes for s in samples) / 2**20,
            }
        )
    processes = _per_process(result.get("server_process_samples", {}))
    if len(processes) > 1:
        out["processes"] = processes
    before, after = result.get("metrics_before"), result.get("metrics_after")
    if before and after:
        out["metrics"] = after
        key = "process_cpu_seconds_total"
        if "cpu_seconds" not in out and key in before and key in after:
            out.update({"source": "metrics", "cpu_seconds": after[key] - before[key]})
    if "cpu_seconds" not in out:
        return out or None
    if pair_seconds > 0:
        out["cpu_seconds_per_pair_second"] = out["cpu_seconds"] / pair_seconds
        out["projected_pairs_per_core"] = pair_seconds / out["cpu_seconds"] if out["cpu_seconds"] > 0 else None
    if "rss_mb_peak" in out and settings["pairs"]:
        out["rss_mb_per_pair"] = (out["rss_mb_peak"] - out["rss_mb_start"]) / settings["pairs"]
    return out


def _per_process(samples_by_pid: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """CPU and memory of each server process over the run (from its own first and last samples)."""
    out: list[dict[str, Any]] = []
    for pid, raw in samples_by_pid.items():
        samples = [ProcSample(**s) for s in raw]
        if len(samples) < 2:
            out.append({"pid": int(pid), "cpu_seconds": None, "cpu_cores_mean": None, "rss_mb_peak": None})
            continue
        first, last = samples[0], samples[-1]
        cpu = last.cpu_seconds - first.cpu_seconds
        out.append({
            "pid": int(pid),
            "cpu_seconds": cpu,
            "cpu_cores_mean": cpu / max(1e-6, last.at - first.at),
            "rss_mb_peak": max(s.rss_bytes for s in samples) / 2**20,
        })
    return out


def document(result: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Everything, for ``--json``."""
    return {
        "settings": settings,
        "summary": summarize(result, settings),
        "timeline": [
            {**{k: v for k, v in row.items() if k != "latencies"}, "latency_ms": _ms(percentiles(row["latencies"]))}
            for row in result["timeline"]
        ],
        "prepare": result.get("prepare", []),
        "worker_errors": result.get("worker_errors", []),
        "server_samples": result.get("server_samples", []),
        "server_process_samples": result.get("server_process_samples", {}),
        "clients": result["clients"],
    }


# --------------------------------------------------------------------------- text


def _fmt(value: Optional[float], unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def _row(stats: dict[str, Optional[float]], unit: str = "", digits: int = 0) -> list[str]:
    return [_fmt(stats.get("p50"), unit, digits), _fmt(stats.get("p95"), unit, digits), _fmt(stats.get("max"), unit, digits)]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def render(doc: dict[str, Any], per_client_limit: int = 20) -> str:
    s = doc["summary"]
    clients = doc["clients"]
    parts: list[str] = []
    if len(clients) <= per_client_limit:
        rows = []
        for c in clients:
            d = c["derived"]
            lat = percentiles(c["latency_s"])
            rows.append(
                [
                    f"client {c['sender']}",
                    f"{int(c['frames_partner'] > 0) + int(c['audio_frames'] > 0)}/2",
                    _fmt(d["kbps_in"], " kbps"),
                    _fmt(d["kbps_out"], " kbps"),
                    _fmt(d["video_loss_pct"], "%", 1),
                    _fmt(c["fps"], "", 1),
                    _fmt(lat["p50"] * 1000 if lat["p50"] is not None else None, " ms"),
                    str(c["pairings"]),
                    str(sum(c["errors"].values())),
                ]
            )
        parts.append(
            _table(["Client", "Tracks", "Bitrate in", "Bitrate out", "Loss", "FPS", "Latency", "Pairs", "Errors"], rows)
        )
    tracks_expected = s["clients_expected"]
    kin = s["kbps_in"]["mean"]
    kout = s["kbps_out"]["mean"]
    parts.append(
        _table(
            ["Summary", "Tracks", "Bitrate in (avg)", "Bitrate out (avg)", "Loss (p95)", "Total errors"],
            [
                [
                    f"{s['clients']} clients",
                    f"video {s['video_tracks_received']}/{tracks_expected}, audio {s['audio_tracks_received']}/{tracks_expected}",
                    _fmt(kin, " kbps"),
                    _fmt(kout, " kbps"),
                    _fmt(s["video_loss_pct"]["p95"], "%", 2),
                    str(sum(s["errors"].values())),
                ]
            ],
        )
    )
    parts.append(
        _table(
            ["Random chat", "p50", "p95", "max"],
            [
                ["start -> paired", *_row(s["start_to_paired_ms"], " ms")],
                ["paired -> first partner frame", *_row(s["paired_to_first_frame_ms"], " ms")],
                ["Next -> first new partner frame", *_row(s["next_to_first_frame_ms"], " ms")],
                ["glass-to-glass latency", *_row(s["latency_ms"], " ms")],
                ["received fps (per client)", *_row(s["fps"], "", 1)],
                ["freezes > 500 ms (per client)", *_row(s["freezes_per_client"])],
                ["bitrate in (per client)", *_row(s["kbps_in"], " kbps")],
                ["bitrate out (per client)", *_row(s["kbps_out"], " kbps")],
                ["video packet loss", *_row(s["video_loss_pct"], "%", 2)],
            ],
        )
    )
    lines = [
        f"pairs formed {s['pairs_formed']:.0f}, Next pressed {s['nexts_sent']}, pair-seconds {s['pair_seconds']:.0f}, "
        f"partner frames {s['frames_received']}, freezes {s['freezes']} ({s['freeze_seconds']:.1f} s)"
    ]
    lateness = s["generator_lateness_ms"]
    busiest = s.get("generator_busiest_worker_cpu")
    lines.append(
        f"generator: mean send lateness p95 {_fmt(lateness['p95'], ' ms', 1)}, skipped slots {s['generator_skipped_slots']}"
        + (f", busiest worker at {busiest * 100:.0f}% of a core" if busiest is not None else "")
        + (
            " (the load generator fell behind: this machine is short of CPU; use more --workers, fewer pairs, or another machine)"
            if s["generator_skipped_slots"] > 0.01 * max(1, s["generator_frames_sent"]) or (busiest or 0) > 0.85
            else ""
        )
    )
    server = s.get("server")
    if server and "cpu_seconds" in server:
        lines.append(
            f"server ({server['source']}): {server['cpu_seconds']:.1f} CPU s"
            + (f" = {server['cpu_cores_mean'] * 100:.0f}% of a core" if "cpu_cores_mean" in server else "")
            + (
                f", {server['cpu_seconds_per_pair_second'] * 1000:.1f} ms CPU per pair-second"
                f" -> ~{server['projected_pairs_per_core']:.1f} pairs per core"
                if server.get("projected_pairs_per_core")
                else ""
            )
            + (
                f"; {server['cpu_ms_per_frame']:.2f} ms per delivered frame"
                f" -> ~{server['projected_pairs_per_core_at_full_fps']:.1f} pairs per core at {doc['settings']['fps']} fps"
                if server.get("cpu_ms_per_frame")
                else ""
            )
            + (f", RSS {server['rss_mb_start']:.0f} -> peak {server['rss_mb_peak']:.0f} MB" if "rss_mb_peak" in server else "")
        )
        if server.get("processes"):
            lines.append("server processes: " + ", ".join(
                f"pid {proc['pid']} {proc['cpu_seconds']:.1f} CPU s = {proc['cpu_cores_mean'] * 100:.0f}% of a core"
                if proc["cpu_seconds"] is not None else f"pid {proc['pid']} gone before the end"
                for proc in server["processes"]
            ))
    if not doc["settings"].get("decode", True):
        lines.append(
            f"frames recognised by their bytes, not decoded: {s['frames_unstamped']} frames not recognised"
            " (the placeholder while waiting; all frames if the server re-encodes: then run without --no-decode);"
            " latency is to the frame's arrival, without a decoder's time"
        )
    if s["errors"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in sorted(s["errors"].items())))
    for message in doc.get("worker_errors", []):
        lines.append(f"worker error: {message}")
    parts.append("\n".join(lines))
    return "\n\n".join(parts)
