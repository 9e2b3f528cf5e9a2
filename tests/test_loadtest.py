"""`sfu loadtest`: end to end against a real `sfu serve`, the replay media, and its safety checks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request

import av
import pytest
from aiortc import MediaStreamError

from sfu.headless.stamp import Stamp, read_frame
from sfu.loadtest.cli import is_loopback_target
from sfu.loadtest.media import ReplayVideoTrack, VideoSpec, encode_video_loop, latency_seconds
from sfu.loadtest.probe import parse_prometheus
from sfu.loadtest.recognise import FrameCatalog
from sfu.loadtest.stats import ClientRecorder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_loadtest_end_to_end(serve_process, tmp_path) -> None:
    url, server = serve_process()
    out, png = tmp_path / "run.json", tmp_path / "run.png"
    run = subprocess.run(
        [
            sys.executable, "-m", "sfu", "loadtest", "--url", url, "--pairs", "2", "--duration", "9",
            "--ramp", "1", "--next-every", "4", "--resolution", "320x240", "--fps", "15",
            "--bitrate", "300k", "--server-pid", str(server.pid), "--json", str(out), "--plot", str(png),
            "--cache-dir", str(tmp_path / "cache"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=150,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[   1s] clients" in run.stdout  # live progress
    assert "Random chat" in run.stdout and "Tracks" in run.stdout
    doc = json.loads(out.read_text())
    s = doc["summary"]
    assert s["connected"] == 4
    assert s["errors"] == {}
    assert s["pairs_formed"] >= 2
    assert s["video_tracks_received"] == 4 and s["audio_tracks_received"] == 4
    assert s["frames_received"] > 4 * 15  # at least a second's worth per client
    assert s["nexts_sent"] >= 1 and s["next_to_first_frame_ms"]["count"] >= 1
    for key in ("start_to_paired_ms", "paired_to_first_frame_ms", "next_to_first_frame_ms", "latency_ms"):
        assert s[key]["p50"] > 0, key
    # Loopback: latency is well under the loop period it would wrap at.
    assert s["latency_ms"]["p50"] < 4000
    assert s["fps"]["p50"] > 0
    assert s["kbps_in"]["p50"] > 0 and s["kbps_out"]["p50"] > 0
    assert s["server"]["cpu_seconds"] > 0 and s["server"]["cpu_seconds_per_pair_second"] > 0
    assert s["server"]["rss_mb_peak"] > 10
    assert len(doc["timeline"]) >= 5
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(c["video_keyframes_sent"] > 0 for c in doc["clients"])


def test_loadtest_without_decoding_recognises_partners_by_their_frames(serve_process, tmp_path) -> None:
    url, server = serve_process()  # the default packet forwarding: frames arrive as they were sent
    out = tmp_path / "run.json"
    run = subprocess.run(
        [
            sys.executable, "-m", "sfu", "loadtest", "--url", url, "--pairs", "2", "--duration", "9",
            "--ramp", "1", "--next-every", "4", "--resolution", "320x240", "--fps", "15",
            "--bitrate", "300k", "--server-pid", str(server.pid), "--json", str(out), "--no-decode",
            "--cache-dir", str(tmp_path / "cache"), "--quiet",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=150,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "frames recognised by their bytes" in run.stdout
    s = json.loads(out.read_text())["summary"]
    assert s["connected"] == 4 and s["errors"] == {}
    assert s["video_tracks_received"] == 4 and s["audio_tracks_received"] == 4
    assert s["frames_received"] > 4 * 15  # partner frames, each one's sender told by its bytes
    assert s["frames_received"] > 5 * s["frames_unstamped"]  # only the placeholder is unknown
    assert s["nexts_sent"] >= 1 and s["next_to_first_frame_ms"]["count"] >= 1
    assert 0 < s["latency_ms"]["p50"] < 4000


def test_the_catalog_tells_what_decoding_the_stamp_tells() -> None:
    spec = VideoSpec(width=160, height=120, fps=10, bitrate=150_000, loop_seconds=1.0, gop_seconds=0.5)
    loops = [encode_video_loop(sender, spec) for sender in (3, 4)]
    catalog = FrameCatalog(loops)
    assert len(catalog) == 2 * 2 * spec.loop_frames
    for loop in loops:
        decoded = _decode_all(loop.chain)
        assert [catalog.stamp(data) for data in loop.chain] == decoded
        assert [catalog.stamp(data) for data in loop.intra] == decoded  # a keyframe asked for: same stamp
    assert catalog.stamp(b"\x10" + loops[0].chain[1][1:]) is None  # not a frame any loop holds


def _decode_all(packets: list[bytes]) -> list[Stamp | None]:
    decoder = av.CodecContext.create("libvpx", "r")
    stamps: list[Stamp | None] = []
    for data in packets:
        for frame in decoder.decode(av.Packet(data)):
            stamps.append(read_frame(frame))
    return stamps


async def test_replay_stamps_survive_vp8_and_keyframe_requests() -> None:
    """Replay starts mid-loop, answers a keyframe request mid-chain and wraps around the loop:
    a VP8 decoder fed what the track sends reads every stamp, with the right sender and index."""
    spec = VideoSpec(width=320, height=240, fps=30, bitrate=300_000, loop_seconds=1.0, gop_seconds=0.3)
    loop = encode_video_loop(4321, spec)
    assert len(loop.chain) == spec.loop_frames == 30 and spec.gop == 9
    track = ReplayVideoTrack(loop)
    calls = {"n": 0}

    def requested() -> bool:
        calls["n"] += 1
        return calls["n"] == 14  # one PLI, somewhere inside a chain segment

    track.keyframe_requested = requested
    sent: list[bytes] = []
    indexes: list[int] = []
    pts: list[int] = []
    started = time.time()
    for _ in range(45):  # 1.5 loops
        packet = await track.recv()
        sent.append(bytes(packet))
        pts.append(packet.pts)
        indexes.append(track._slot % spec.loop_frames)  # type: ignore[operator]
        wall = time.time()
        assert 0.0 <= latency_seconds(indexes[-1], wall, spec) < 0.5
    track.stop()
    assert time.time() - started < 10
    assert all(b > a for a, b in zip(pts, pts[1:])) and pts[0] == 0
    stamps = _decode_all(sent)
    assert len(stamps) == len(sent)
    assert [s.sender if s else None for s in stamps] == [4321] * len(sent)
    assert [s.frame if s else None for s in stamps] == indexes
    # Intra frames answered the start and the request; the chain's own keyframes were used too.
    assert track.keyframes_sent > 45 // spec.gop


async def test_replay_track_stops() -> None:
    spec = VideoSpec(width=160, height=120, fps=10, loop_seconds=0.5, gop_seconds=0.5)
    track = ReplayVideoTrack(encode_video_loop(1, spec))
    await track.recv()
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(pending, 5)


def test_recorder_tells_whose_picture_it_got() -> None:
    spec = VideoSpec(fps=30, loop_seconds=4.0)
    rec = ClientRecorder(1, spec)
    t = 100.0
    rec.start_sent(t)
    rec.message({"type": "waiting"}, t + 0.01)
    rec.frame(None, t + 0.1, 0.0)  # grey placeholder
    rec.message({"type": "paired", "partner": "A"}, t + 0.2)
    rec.frame(Stamp(7, 3, 0), t + 0.3, 1000.0)  # learns partner A = sender 7
    rec.frame(Stamp(7, 4, 0), t + 0.33, 1000.03)
    rec.frame(Stamp(7, 5, 0), t + 1.0, 1000.7)  # gap > 500 ms: a freeze
    rec.next_sent(t + 2.0)
    rec.frame(Stamp(7, 6, 0), t + 2.05, 1001.0)  # trailing frame of the old partner: not an error
    rec.message({"type": "paired", "partner": "B"}, t + 2.5)
    rec.frame(Stamp(7, 7, 0), t + 2.55, 1001.1)  # still trailing
    rec.frame(Stamp(9, 1, 0), t + 2.6, 1001.2)  # learns B = 9
    rec.frame(Stamp(8, 1, 0), t + 2.7, 1001.3)  # a third person's picture: the server misrouted
    rec.frame(Stamp(1, 1, 0), t + 2.8, 1001.4)  # own picture echoed back
    rec.finish(t + 3.0)
    s = rec.summary(t + 3.0)
    assert s["pairings"] == 2
    assert s["start_to_paired_s"] == pytest.approx(0.2)
    assert s["paired_to_first_frame_s"] == pytest.approx([0.1, 0.1])
    assert s["next_to_first_frame_s"] == pytest.approx([0.6])
    assert s["next_partners"] == [9]  # whose first frame that was
    assert s["frames_partner"] == 4 and s["frames_stale"] == 2 and s["frames_unstamped"] == 1
    assert s["freezes"] == 2  # the gap, and the picture stopping 1 s before Next
    assert s["errors"] == {"unexpected_sender": 1, "own_picture": 1}
    # latency from the wall-clock-aligned loop index: frame 3 due at slot 3 mod 120
    assert all(v >= 0 for v in s["latency_s"])


def test_recorder_follows_latency_past_the_loop_period() -> None:
    spec = VideoSpec(fps=10, loop_seconds=2.0)  # latency wraps every 2 s
    rec = ClientRecorder(1, spec)
    rec.start_sent(0.0)
    rec.message({"type": "paired", "partner": "A"}, 0.0)
    # A queue builds up: latency grows by 0.2 s per frame from 0.5 s to 2.5 s (past the period),
    # then part of the backlog is flushed (1.6 s of frames skipped) and it drops to 1.0 s.
    sends = [1000.0 + i * 0.1 for i in range(11)] + [1002.6]
    latencies = [0.5 + 0.2 * i for i in range(11)] + [1.0]
    for i, (sent, latency) in enumerate(zip(sends, latencies)):
        rec.frame(Stamp(2, round(sent * spec.fps) % spec.loop_frames, 0), 1.0 + i, sent + latency)
    assert rec.latencies == pytest.approx(latencies, abs=1e-6)


def test_refuses_non_loopback_target() -> None:
    assert is_loopback_target("http://127.0.0.1:1")
    assert is_loopback_target("http://localhost:1")
    assert not is_loopback_target("http://192.0.2.1:8080")
    run = subprocess.run(
        [sys.executable, "-m", "sfu", "loadtest", "--url", "http://192.0.2.1:8080", "--pairs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 2
    assert "refusing" in run.stderr and "--allow-remote" in run.stderr


async def test_keyframe_request_over_rtp_switches_replay_to_intra() -> None:
    """A PLI sent by a real receiver reaches the replay track (through the aiortc hooks)
    and makes it send intra frames at once; the receiver keeps reading the right stamps."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    from sfu.media.aiortc_hooks import ice, testing
    from sfu.media.aiortc_hooks.server import send_pli

    # One keyframe per loop, so that intra frames can only come from the start or the request.
    spec = VideoSpec(width=320, height=240, fps=30, bitrate=300_000, loop_seconds=4.0, gop_seconds=4.0)
    track = ReplayVideoTrack(encode_video_loop(77, spec))
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: list[Stamp | None] = []
    got_frames = asyncio.Event()

    async def read(remote) -> None:
        while True:
            frame = await remote.recv()
            received.append(read_frame(frame))
            if len(received) >= 10:
                got_frames.set()

    readers: list[asyncio.Task] = []
    receiver_pc.on("track", lambda remote: readers.append(asyncio.ensure_future(read(remote))))
    try:
        sender = sender_pc.addTransceiver(track, direction="sendonly").sender
        track.keyframe_requested = lambda: testing.take_keyframe_request(sender)
        ice.set_host_addresses(sender_pc, ["127.0.0.1"])
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        ice.set_host_addresses(receiver_pc, ["127.0.0.1"])
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        await asyncio.wait_for(got_frames.wait(), 30)
        # Stop sending intra frames after the start (reach a chain frame), then request a keyframe.
        while track.sending_intra:
            await asyncio.sleep(0.05)
        intra_before = track.intra_sent
        receiver = receiver_pc.getReceivers()[0]
        send_pli(receiver, testing.sender_ssrc(sender))  # what a forwarding server does on a switch
        deadline = time.monotonic() + 10
        while track.intra_sent == intra_before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert track.intra_sent > intra_before
        count = len(received)
        while len(received) < count + 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [s.sender if s else None for s in received[-10:]] == [77] * 10
    finally:
        for task in readers:
            task.cancel()
        track.stop()
        await sender_pc.close()
        await receiver_pc.close()


def test_prometheus_text_is_parsed() -> None:
    from sfu.loadtest.probe import parse_prometheus

    text = (
        "# HELP process_cpu_seconds_total CPU\n# TYPE process_cpu_seconds_total counter\n"
        "process_cpu_seconds_total 12.5\n"
        'sfu_participants{state="paired"} 8\n'
        "sfu_pairs_made_total 3 1700000000000\n"
        "garbage line\n"
    )
    assert parse_prometheus(text) == {
        "process_cpu_seconds_total": 12.5,
        'sfu_participants{state="paired"}': 8.0,
        "sfu_pairs_made_total": 3.0,
    }


def test_plot_without_matplotlib_fails_clearly(monkeypatch) -> None:
    from sfu.loadtest.plot import PlotUnavailable, require_matplotlib

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    with pytest.raises(PlotUnavailable, match=r"pip install 'sfu\[loadtest\]'"):
        require_matplotlib()


def test_loadtest_spreads_clients_over_several_servers(serve_process, tmp_path) -> None:
    """Two --url and two --server-pid: clients alternate between the servers (each pairs its own),
    CPU is summed over both processes and shown per process."""
    (url_a, server_a), (url_b, server_b) = serve_process(), serve_process()
    out = tmp_path / "run.json"
    run = subprocess.run(
        [
            sys.executable, "-m", "sfu", "loadtest", "--url", url_a, "--url", url_b, "--pairs", "2",
            "--duration", "7", "--ramp", "1", "--resolution", "160x120", "--fps", "10", "--bitrate", "100k",
            "--no-audio", "--server-pid", str(server_a.pid), "--server-pid", str(server_b.pid),
            "--json", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=150,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"against {url_a}, {url_b}" in run.stdout
    doc = json.loads(out.read_text())
    assert doc["settings"]["urls"] == [url_a, url_b]
    by_server: dict[str, list[int]] = {}
    for client in doc["clients"]:
        by_server.setdefault(client["url"], []).append(client["sender"])
    ws = lambda url: "ws" + url[4:] + "/ws"  # noqa: E731
    assert by_server == {ws(url_a): [1, 3], ws(url_b): [2, 4]}
    s = doc["summary"]
    assert s["connected"] == 4 and s["errors"] == {} and s["pairs_formed"] >= 2
    for url in (url_a, url_b):  # each server paired its own two clients
        with urllib.request.urlopen(url + "/metrics") as response:
            metrics = parse_prometheus(response.read().decode())
        assert metrics["sfu_connections_total"] == 2 and metrics['sfu_pairs_by_basis_total{basis="any"}'] >= 1
    processes = s["server"]["processes"]
    assert [p["pid"] for p in processes] == [server_a.pid, server_b.pid]
    assert all(p["cpu_seconds"] > 0 for p in processes)
    assert abs(sum(p["cpu_seconds"] for p in processes) - s["server"]["cpu_seconds"]) < 0.5
    assert "server processes: pid %d" % server_a.pid in run.stdout


def test_each_client_goes_to_the_next_server_in_turn() -> None:
    from sfu.loadtest.worker import Plan

    plan = Plan(urls=("http://a", "http://b", "http://c"), spec=VideoSpec(160, 120, 10, 100_000, 1.0), clients=6,
                ramp=0.0, duration=1.0)
    assert [plan.url_for(sender) for sender in range(1, 7)] == ["http://a", "http://b", "http://c"] * 2
