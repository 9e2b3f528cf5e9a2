"""The Janus comparison's figures: one summary shape for both targets, the table, the verdict."""

from __future__ import annotations

from typing import Any

from sfu.loadtest.stats import percentiles

#: The steady state starts this long after the last direction's first frame.
SETTLE_SECONDS = 1.0
#: Fewer seconds than this of steady state give no steady figure.
MIN_STEADY_SECONDS = 3.0


def steady_cpu_per_pair_second(samples: list[dict[str, float]], since: float | None, pairs: int) -> float | None:
    """Server CPU seconds per pair-second between the first sample at or after ``since`` and the
    last sample (``samples``: {"at", "cpu_seconds"}, in time order); ``None`` if too short."""
    if since is None or pairs <= 0:
        return None
    window = [s for s in samples if s["at"] >= since]
    if len(window) < 2 or window[-1]["at"] - window[0]["at"] < MIN_STEADY_SECONDS:
        return None
    first, last = window[0], window[-1]
    return (last["cpu_seconds"] - first["cpu_seconds"]) / ((last["at"] - first["at"]) * pairs)


def _finish(out: dict[str, Any], fps: int) -> dict[str, Any]:
    cpu, pair_seconds, frames = out["cpu_seconds"], out["pair_seconds"], out["frames"]
    per_pair = cpu / pair_seconds if cpu is not None and pair_seconds > 0 else None
    out["cpu_ms_per_pair_second"] = per_pair * 1000 if per_pair is not None else None
    out["pairs_per_core"] = 1 / per_pair if per_pair else None
    steady = out.pop("steady")
    out["steady_cpu_ms_per_pair_second"] = steady * 1000 if steady is not None else None
    out["steady_pairs_per_core"] = 1 / steady if steady else None
    out["cpu_ms_per_frame"] = cpu / frames * 1000 if cpu is not None and frames else None
    rates = [f for f in out.pop("fps_list") if f is not None]
    out["fps_p50"] = percentiles(rates)["p50"]
    out["fps_min"] = min(rates) if rates else None
    out["fps_target"] = fps
    return out


def janus_summary(raw: dict[str, Any]) -> dict[str, Any]:
    """The summary of :func:`benchmarks.janus.drive`'s result."""
    people, samples = raw["people"], raw["samples"]
    cpu = samples[-1]["cpu_seconds"] - samples[0]["cpu_seconds"] if len(samples) >= 2 else None
    firsts = [p["video"]["first_frame_at"] for p in people]
    all_receiving = len(people) == 2 * raw["pairs"] and all(f is not None for f in firsts)
    since = max(firsts) + SETTLE_SECONDS if all_receiving else None
    lost = sum(p["media"].get("video_packets_lost", 0) for p in people)
    received = sum(p["media"].get("video_packets_received", 0) for p in people)
    errors = sum(sum(p["errors"].values()) for p in people) + len(raw["errors"])
    out = {
        "target": "janus",
        "cpu_seconds": cpu,
        "pair_seconds": sum(p["paired_seconds"] for p in people) / 2,
        "frames": sum(p["video"]["frames"] for p in people),
        "steady": steady_cpu_per_pair_second(samples, since, raw["pairs"]),
        "fps_list": [p["video"]["fps"] for p in people],
        "video_directions": sum(1 for p in people if p["video"]["frames"] > 0),
        "audio_directions": sum(1 for p in people if p["audio"]["frames"] > 0),
        "directions": 2 * raw["pairs"],
        "video_loss_pct": 100 * lost / (lost + received) if lost + received else None,
        "keyframes_sent_per_person_s": _keyframe_rate(people, "paired_seconds"),
        "kbps_in": _mean([p["media"].get("subscriber_bytes_received", 0) * 8 / 1000 / p["paired_seconds"]
                          for p in people if p["paired_seconds"] > 0]),
        "rss_mb_peak": max((s["rss_bytes"] for s in samples), default=0) / 2**20,
        "errors": errors,
        "slowlink_events": sum(p["slowlink"] for p in people),
        "hangups": sum(len(p["hangups"]) for p in people),
        "keyframe_requests": sum(p["keyframe_requests"] for p in people),
        "client_cpu_seconds": sum(g["cpu_seconds"] or 0.0 for g in raw["generator"]),
    }
    return _finish(out, raw["fps"])


def sfu_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The summary of an ``sfu loadtest --json`` document (``{"failed": True}``: the run failed)."""
    if doc.get("failed"):
        return {"target": "sfu", "failed": True}
    s, clients, samples = doc["summary"], doc["clients"], doc.get("server_samples", [])
    server = s.get("server") or {}
    since = None
    if samples:
        full = [row["second"] for row in doc.get("timeline", []) if row["receiving"] >= s["clients_expected"]]
        since = samples[0]["at"] + full[0] + SETTLE_SECONDS if full else None
    pairs = doc["settings"]["pairs"]
    out = {
        "target": "sfu",
        "cpu_seconds": server.get("cpu_seconds"),
        "pair_seconds": s["pair_seconds"],
        "frames": s["frames_received"],
        "steady": steady_cpu_per_pair_second(samples, since, pairs),
        "fps_list": [c.get("fps") for c in clients],
        "video_directions": s["video_tracks_received"],
        "audio_directions": s["audio_tracks_received"],
        "directions": s["clients_expected"],
        "video_loss_pct": s["video_loss_pct"]["mean"],
        "keyframes_sent_per_person_s": _keyframe_rate(clients, "paired_seconds"),
        "kbps_in": s["kbps_in"]["mean"],
        "rss_mb_peak": server.get("rss_mb_peak", 0.0),
        "errors": sum(s["errors"].values()),
        "client_cpu_seconds": s.get("generator_cpu_seconds"),
    }
    return _finish(out, doc["settings"]["fps"])


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _keyframe_rate(people: list[dict[str, Any]], seconds_key: str) -> float | None:
    seconds = sum(p[seconds_key] for p in people)
    return sum(p["video_keyframes_sent"] for p in people) / seconds if seconds > 0 else None


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(summaries: dict[str, dict[str, Any]]) -> str:
    header = ["target", "CPU ms/pair-s (run)", "CPU ms/pair-s (steady)", "pairs/core (run / steady)", "CPU ms/frame",
              "fps p50 / min", "kbps in", "video / audio directions", "video loss %", "keyframes/person-s", "RSS MB",
              "clients CPU s", "errors"]
    rows = []
    for name, s in summaries.items():
        if s.get("failed"):
            rows.append([name, "failed"] + [""] * (len(header) - 2))
            continue
        rows.append([
            name,
            _f(s["cpu_ms_per_pair_second"], ".1f"),
            _f(s["steady_cpu_ms_per_pair_second"], ".1f"),
            f"{_f(s['pairs_per_core'], '.1f')} / {_f(s['steady_pairs_per_core'], '.1f')}",
            _f(s["cpu_ms_per_frame"], ".2f"),
            f"{_f(s['fps_p50'], '.1f')} / {_f(s['fps_min'], '.1f')}",
            _f(s["kbps_in"], ".0f"),
            f"{s['video_directions']}/{s['directions']} / {s['audio_directions']}/{s['directions']}",
            _f(s["video_loss_pct"], ".2f"),
            _f(s["keyframes_sent_per_person_s"], ".2f"),
            _f(s["rss_mb_peak"], ".0f"),
            _f(s["client_cpu_seconds"], ".1f"),
            str(s["errors"]),
        ])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in rows])


def verdict(sfu: dict[str, Any], janus: dict[str, Any]) -> tuple[float | None, str]:
    """sfu CPU per pair-second / Janus's (steady state when both have one, else whole run), and
    "ahead of Janus" only when that is below 1, sfu's CPU per delivered frame is lower too, and
    every direction received video on sfu's side (a server that delivers less would look cheap)."""
    key = "steady_cpu_ms_per_pair_second"
    if sfu.get(key) is None or janus.get(key) is None:
        key = "cpu_ms_per_pair_second"
    a, b = sfu.get(key), janus.get(key)
    if a is None or not b:
        return None, "no verdict (a target has no CPU figure)"
    ratio = a / b
    per_frame = sfu.get("cpu_ms_per_frame"), janus.get("cpu_ms_per_frame")
    cheaper_per_frame = None not in per_frame and per_frame[0] < per_frame[1]  # type: ignore[operator]
    delivered = sfu.get("video_directions") == sfu.get("directions")
    ahead = ratio < 1 and cheaper_per_frame and delivered
    return ratio, "ahead of Janus" if ahead else "not ahead of Janus"


def ratio_lines(summaries: dict[str, dict[str, Any]]) -> list[str]:
    sfu, janus = summaries.get("sfu"), summaries.get("janus")
    if not sfu or not janus or sfu.get("failed") or janus.get("failed"):
        return ["no ratio: both targets must have run"]
    lines = []
    for label, key in (("whole run", "cpu_ms_per_pair_second"), ("steady state", "steady_cpu_ms_per_pair_second"),
                       ("per delivered frame", "cpu_ms_per_frame")):
        if sfu.get(key) is not None and janus.get(key):
            lines.append(f"sfu / Janus CPU ({label}): {sfu[key] / janus[key]:.2f}")
    ratio, word = verdict(sfu, janus)
    lines.append(f"verdict: {word}" + (f" (sfu uses {ratio:.2f}x Janus's CPU per pair-second)" if ratio else ""))
    return lines
