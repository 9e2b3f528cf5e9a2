"""The Janus comparison's pure parts (configuration, Janus replies, pairing of clients, figures) and
the receiver that counts frames without decoding. Nothing here needs Janus installed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from benchmarks import janus_server
from benchmarks.janus_api import JanusError, check, created_id, events, plugin_reply, room_request
from benchmarks.janus_clients import Plan, partner_of, room_of, split
from benchmarks.janus_report import steady_cpu_per_pair_second, verdict
from sfu.headless.synthetic import StampedVideoTrack, ToneAudioTrack
from sfu.loadtest.media import VideoSpec
from sfu.media.aiortc_hooks import ice, testing
from sfu.media.aiortc_hooks.testing import CountingBuffer, parse_rtp

# -- configuration ---------------------------------------------------------------------------------


def _folders(tmp_path: Path) -> janus_server.JanusSettings:
    made = {}
    for folder, names in {
        "plugins": ["libjanus_videoroom.so", "libjanus_echotest.so", "libjanus_sip.so", "libjanus_sip.so.1"],
        "transports": ["libjanus_http.so", "libjanus_websockets.so", "libjanus_http.so.1.1.2"],
        "loggers": ["libjanus_jsonlog.so"],
        "events": [],
    }.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")
        made[folder] = tmp_path / folder
    return janus_server.JanusSettings(
        http_port=18088, rtp_ports=(21000, 21099), ice_address="198.18.0.1",
        plugins_folder=made["plugins"], transports_folder=made["transports"],
        loggers_folder=made["loggers"], events_folder=made["events"],
    )


def _setting(text: str, name: str) -> str:
    found = re.findall(rf"^\s*{name} = (.+)$", text, re.MULTILINE)
    assert len(found) == 1, (name, found)
    return found[0]


def test_config_loads_only_the_videoroom_plugin_and_the_http_transport(tmp_path: Path) -> None:
    settings = _folders(tmp_path)
    files = janus_server.janus_config(settings, tmp_path / "conf")
    assert set(files) == {"janus.jcfg", "janus.transport.http.jcfg", "janus.plugin.videoroom.jcfg"}
    main = files["janus.jcfg"]
    # Every module Janus would load (names ending in .so) is disabled, except the two wanted.
    disabled = re.findall(r'^\s*disable = "(.*)"$', main, re.MULTILINE)
    assert disabled == ["libjanus_echotest.so,libjanus_sip.so", "libjanus_websockets.so", "libjanus_jsonlog.so"]
    assert _setting(main, "configs_folder") == f'"{tmp_path / "conf"}"'
    assert _setting(main, "plugins_folder") == f'"{settings.plugins_folder}"'
    assert _setting(main, "rtp_port_range") == '"21000-21099"'
    assert _setting(main, "ice_enforce_list") == '"198.18.0.1"'
    assert _setting(main, "full_trickle") == "false" and _setting(main, "ice_lite") == "false"
    assert "stun_server" not in main and "turn_server" not in main
    http = files["janus.transport.http.jcfg"]
    assert _setting(http, "port") == "18088"
    assert _setting(http, "ip") == '"127.0.0.1"'
    assert _setting(http, "http") == "true" and _setting(http, "https") == "false"
    assert _setting(http, "admin_http") == "false"
    assert "room-" not in files["janus.plugin.videoroom.jcfg"]  # no static rooms
    assert settings.url == "http://127.0.0.1:18088/janus"


def test_config_is_written_where_janus_reads_it(tmp_path: Path) -> None:
    settings = _folders(tmp_path)
    janus_server.write_config(settings, tmp_path / "conf")
    for name, text in janus_server.janus_config(settings, tmp_path / "conf").items():
        assert (tmp_path / "conf" / name).read_text() == text


def test_a_missing_module_folder_disables_nothing(tmp_path: Path) -> None:
    assert janus_server.modules_in(tmp_path / "absent") == []


# -- Janus replies -----------------------------------------------------------------------------------


def test_session_and_handle_ids() -> None:
    assert created_id({"janus": "success", "transaction": "t1", "data": {"id": 4242}}) == 4242
    with pytest.raises(JanusError) as caught:
        created_id({"janus": "error", "transaction": "t1", "error": {"code": 458, "reason": "No such session 1"}})
    assert (caught.value.code, caught.value.reason) == (458, "No such session 1")
    with pytest.raises(JanusError, match="expected success"):
        created_id({"janus": "ack", "transaction": "t1"})
    with pytest.raises(JanusError, match="not a Janus reply"):
        check(["janus", "success"])


def test_plugin_replies_events_and_errors() -> None:
    joined = {"janus": "event", "sender": 7, "transaction": "t3",
              "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "joined", "id": 1}}}
    assert plugin_reply(joined).data == {"videoroom": "joined", "id": 1}
    assert plugin_reply(joined).jsep is None
    answered = {**joined, "jsep": {"type": "answer", "sdp": "v=0\r\n"}}
    assert plugin_reply(answered).jsep == {"type": "answer", "sdp": "v=0\r\n"}
    refused = {"janus": "event", "plugindata": {"plugin": "janus.plugin.videoroom",
                                                "data": {"videoroom": "event", "error_code": 428, "error": "No such feed (2)"}}}
    with pytest.raises(JanusError) as caught:
        plugin_reply(refused)
    assert (caught.value.code, caught.value.reason) == (428, "No such feed (2)")
    with pytest.raises(JanusError, match="no plugin data"):
        plugin_reply({"janus": "success", "transaction": "t4"})


def test_long_poll_answers() -> None:
    one = {"janus": "webrtcup", "sender": 3}
    assert events(one) == [one]
    assert events([one, {"janus": "keepalive"}, "junk", {"no": "type"}]) == [one, {"janus": "keepalive"}]
    assert events(None) == []


def test_a_pair_room_has_two_publishers_and_no_bitrate_cap() -> None:
    request = room_request(1003)
    assert request["request"] == "create" and request["room"] == 1003
    assert (request["publishers"], request["bitrate"], request["fir_freq"]) == (2, 0, 0)
    assert (request["videocodec"], request["audiocodec"]) == ("vp8", "opus")


# -- clients -------------------------------------------------------------------------------------------


def test_each_pair_has_a_room_and_spans_both_workers() -> None:
    plan = Plan("http://127.0.0.1:1/janus", VideoSpec(), pairs=3, ramp=1.0, duration=5.0, room_base=1000)
    assert [room_of(s, plan) for s in range(1, 7)] == [1000, 1000, 1001, 1001, 1002, 1002]
    assert [partner_of(s) for s in range(1, 7)] == [2, 1, 4, 3, 6, 5]
    groups = split(plan.clients, 2)
    assert groups == [[1, 3, 5], [2, 4, 6]]
    assert all((s in groups[0]) != (partner_of(s) in groups[0]) for s in range(1, 7))
    assert split(3, 5) == [[1], [2], [3]]


# -- figures -----------------------------------------------------------------------------------------


def test_steady_cpu_is_read_after_everyone_receives() -> None:
    samples = [{"at": 100.0 + t, "cpu_seconds": c} for t, c in enumerate([0.0, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0])]
    # From t=102 (cpu 1.2) to t=106 (cpu 2.0): 0.8 s of CPU over 4 s for 2 pairs.
    assert steady_cpu_per_pair_second(samples, 101.5, pairs=2) == pytest.approx(0.1)
    assert steady_cpu_per_pair_second(samples, 104.5, pairs=2) is None  # under 3 s of steady state
    assert steady_cpu_per_pair_second(samples, None, pairs=2) is None  # a direction never received


def _summary(per_pair: float, per_frame: float, directions: int = 10) -> dict:
    return {"steady_cpu_ms_per_pair_second": per_pair, "cpu_ms_per_pair_second": per_pair + 3,
            "cpu_ms_per_frame": per_frame, "video_directions": directions, "directions": 10}


def test_verdict() -> None:
    assert verdict(_summary(30, 0.5), _summary(40, 0.7)) == (pytest.approx(0.75), "ahead of Janus")
    assert verdict(_summary(50, 1.4), _summary(40, 0.7))[1] == "not ahead of Janus"
    # Cheaper per pair-second only because frames were lost on the way: not ahead.
    assert verdict(_summary(30, 0.9), _summary(40, 0.7))[1] == "not ahead of Janus"
    assert verdict(_summary(30, 0.5, directions=9), _summary(40, 0.7))[1] == "not ahead of Janus"
    no_steady = {**_summary(30, 0.5), "steady_cpu_ms_per_pair_second": None}
    assert verdict(no_steady, _summary(40, 0.7))[0] == pytest.approx(33 / 43)  # falls back to the whole run


# -- counting receivers ------------------------------------------------------------------------------


def _rtp(sequence: int, timestamp: int, marker: bool, payload: bytes) -> bytes:
    header = bytes([0x80, (0x80 if marker else 0) | 96]) + sequence.to_bytes(2, "big")
    return header + timestamp.to_bytes(4, "big") + (1234).to_bytes(4, "big") + payload


KEY_START = bytes([0x10, 0x00, 0x9D, 0x01, 0x2A])  # S=1 partition 0; frame tag P bit clear: keyframe
DELTA_START = bytes([0x10, 0x01, 0xAA])
CONTINUATION = bytes([0x00, 0xBB, 0xCC])


def test_counting_buffer_counts_pictures_once_and_decodes_nothing() -> None:
    clock = iter([10.0, 11.0, 12.0])
    buffer = CountingBuffer(True, lambda: next(clock))
    packets = [
        _rtp(1, 3000, False, KEY_START), _rtp(2, 3000, True, CONTINUATION),  # keyframe in two packets
        _rtp(3, 6000, False, DELTA_START), _rtp(4, 6000, True, CONTINUATION),
        _rtp(4, 6000, True, CONTINUATION),  # retransmitted: the same picture
        _rtp(2, 3000, True, CONTINUATION),  # a late copy of an older picture's last packet
        _rtp(5, 9000, True, DELTA_START),  # a picture in one packet
    ]
    for data in packets:
        assert buffer.add(parse_rtp(data)) == (False, None)
    assert (buffer.packets, buffer.frames, buffer.keyframes) == (7, 3, 1)
    assert buffer.first_frame_at == 10.0

    audio = CountingBuffer(False, lambda: 5.0)
    for sequence in range(4):
        audio.add(parse_rtp(_rtp(sequence, 960 * sequence, sequence == 0, b"\xfc\xff\xfe")))
    assert (audio.packets, audio.frames, audio.keyframes, audio.first_frame_at) == (4, 4, 0, 5.0)


async def test_counting_receivers_on_a_real_connection() -> None:
    publisher, watcher = RTCPeerConnection(), RTCPeerConnection()
    video, audio = StampedVideoTrack(3, 320, 240, 15), ToneAudioTrack()
    counters: dict[str, CountingBuffer] = {}
    pending: dict[str, asyncio.Future] = {}
    try:

        @watcher.on("track")
        def on_track(remote) -> None:
            receiver = next(t.receiver for t in watcher.getTransceivers() if t.receiver.track is remote)
            counters[remote.kind] = testing.count_received(receiver, lambda: 42.0)
            pending[remote.kind] = asyncio.ensure_future(remote.recv())

        publisher.addTrack(audio)
        publisher.addTrack(video)
        for pc in (publisher, watcher):
            ice.set_host_addresses(pc, ["127.0.0.1"])
        await publisher.setLocalDescription(await publisher.createOffer())
        await watcher.setRemoteDescription(publisher.localDescription)
        await watcher.setLocalDescription(await watcher.createAnswer())
        await publisher.setRemoteDescription(RTCSessionDescription(sdp=watcher.localDescription.sdp, type="answer"))
        for _ in range(1500):
            if set(counters) == {"audio", "video"} and counters["video"].frames >= 10 and counters["audio"].frames >= 10:
                break
            await asyncio.sleep(0.02)
        assert counters["video"].frames >= 10 and counters["audio"].frames >= 10
        assert counters["video"].keyframes >= 1 and counters["video"].packets >= counters["video"].frames
        assert counters["video"].first_frame_at == 42.0
        # Ten pictures counted, none decoded: the remote tracks have yielded nothing.
        assert not pending["video"].done() and not pending["audio"].done()
    finally:
        for future in pending.values():
            future.cancel()
        video.stop()
        audio.stop()
        await publisher.close()
        await watcher.close()
