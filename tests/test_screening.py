"""Automatic detection end to end: real aiortc headless clients through a real server, the test
classifier (a magenta marker the clients draw on demand) in a real worker process, and the moderation
service on a temporary SQLite database."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sfu.config import Config
from sfu.headless.client import ClientError, HeadlessClient
from sfu.headless.stamp import read as read_stamp
from sfu.headless.synthetic import StampedVideoTrack
from sfu.moderation.evidence_image import decode_jpeg
from sfu.moderation.identity import ModerationIdentity
from sfu.moderation.records import Ban
from sfu.moderation.service import ModerationService
from sfu.moderation.settings import ModerationSettings

from .moderation_helpers import device_of, settings_for
from .ops_helpers import Running, running
from .routing import pair_up

INTERVAL = 1.0


@contextlib.asynccontextmanager
async def moderated(tmp_path: Path, **overrides) -> AsyncIterator[tuple[Running, ModerationService, list[Ban]]]:
    """A server screening with the marker classifier every ``INTERVAL`` s; its own moderation service
    (on a temporary SQLite database, 2 strikes ban) stores the automatic reports; the bans it announced."""
    settings = settings_for(
        tmp_path / "data", strikes_before_ban=2,
        **{"moderation_classifier": "marker", "moderation_interval": INTERVAL, "moderation_queue": 2, **overrides},
    )
    async with running(Config(host="127.0.0.1", port=0, online_interval=0.5, moderation=settings)) as srv:
        service = srv.server.moderation
        assert service is not None
        bans: list[Ban] = []
        service.on_ban(bans.append)
        yield srv, service, bans


def identity(srv: Running, client: HeadlessClient) -> ModerationIdentity:
    """The moderation identity (device + address) the server knows ``client`` by."""
    assert srv.server.safety is not None
    return srv.server.safety.visitors[client.id].identity


@contextlib.asynccontextmanager
async def clients(url: str, *sender_ids: int, **kwargs) -> AsyncIterator[list[HeadlessClient]]:
    made = [HeadlessClient(url, sender_id, **kwargs) for sender_id in sender_ids]
    try:
        await asyncio.gather(*(c.connect() for c in made))
        await asyncio.gather(*(c.wait_connected() for c in made))
        yield made
    finally:
        await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


async def metric(url: str, name: str) -> float:
    """The sum of every sample of ``name`` in the server's /metrics."""
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def frames_from(client: HeadlessClient, sender_id: int, since: float = 0.0) -> list:
    return [f for f in client.received.frames if f.at >= since and f.stamp is not None and f.stamp.sender == sender_id]


def wall_ms() -> int:
    """Now on the stamps' clock (wall-clock milliseconds modulo 2**32)."""
    return int(time.time() * 1000) % 2**32


def captured_after(client: HeadlessClient, sender_id: int, wall: int) -> list:
    """Frames from ``sender_id`` that its camera captured after ``wall`` (stamps' clock): a picture
    taken after the video was hidden must never arrive, however late the receiver decodes."""
    return [f for f in frames_from(client, sender_id) if (f.stamp.clock_ms - wall) % 2**32 < 2**31]


async def eventually(condition, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_flagged_video_is_hidden_reported_and_strikes_escalate_to_a_ban(tmp_path: Path) -> None:
    async with moderated(tmp_path) as (srv, service, bans), clients(srv.url, 1, 2, 3) as (a, b, c):
        await pair_up(a, b)  # pre-screened: each is shown once their first picture was classified clean
        a_identity = identity(srv, a)
        assert a_identity.device == device_of(a.device_token)
        a.show_marker()
        drawn = time.monotonic()

        # a's video is hidden from b within one sample interval (checked loosely: a busy machine
        # may be slow, never by a whole interval more), and both are told.
        told = await a.expect("moderation", timeout=10 * INTERVAL)
        assert told == {"type": "moderation", "action": "video_hidden", "reason": "nudity"}
        assert await b.expect("moderation", timeout=5) == {
            "type": "moderation", "action": "partner_hidden", "reason": "nudity"
        }
        hidden_at, hidden_wall = time.monotonic(), wall_ms()  # the server hid a's video before this
        picture_to_hidden = await metric(srv.url, "sfu_moderation_hide_seconds_sum")
        print(f"\nmarker drawn -> publisher told: {hidden_at - drawn:.2f} s (sample interval {INTERVAL} s); "
              f"flagged picture taken -> hidden: {picture_to_hidden * 1000:.0f} ms")
        audio_before = b.received.audio_frames
        # b gets the neutral placeholder instead of a's pictures; a's sound continues; b's video still reaches a.
        await eventually(lambda: any(f.stamp is None for f in b.frames_since(hidden_at)), "no placeholder")
        await eventually(lambda: b.received.audio_frames > audio_before + 10, "a's sound stopped")
        await a.wait_frame_from(2, since=hidden_at + 0.5, timeout=15)
        assert not captured_after(b, 1, hidden_wall), "a picture of a taken after it was hidden reached b"

        # An automatic report with the server's own picture of a (a's stamp reads back from the JPEG).
        for _ in range(100):
            reports = await service.list_reports(source="automatic")
            if reports:
                break
            await asyncio.sleep(0.1)
        (report,) = reports
        assert report.reported.device == a_identity.device and report.reason == "nudity" and report.labels["MARKER"] >= 0.2
        detail = await service.report_detail(report.id)
        assert detail is not None and len(detail.evidence) == 1
        found = await service.evidence_image(detail.evidence[0].id)
        assert found is not None
        stamp = read_stamp(decode_jpeg(found[1]))
        assert stamp is not None and stamp.sender == 1
        assert bans == []  # one strike so far

        # b moves on; a is paired with c at once, and c is never shown a's (still flagged) video.
        await c.start()
        await c.expect("waiting")
        await b.next()
        assert (await c.expect("paired", timeout=10))["partner"] == a.id
        assert (await c.expect("moderation", timeout=10))["action"] == "partner_hidden"
        assert (await a.expect("moderation", timeout=10))["action"] == "video_hidden"
        # (Whether c's video reaches a first is a race with the ban: the pairing sample of a can be
        # classified before c's first one. That a's flag never blocks a partner's video is shown above.)
        # The second strike bans a, who is disconnected at once and refused when coming back.
        banned = await a.expect("error", timeout=15)
        assert banned["code"] == "banned" and banned["until"]
        assert (await a.expect("_closed"))["code"] == 1008
        (ban,) = bans
        assert ban.device == a_identity.device and ban.created_by == "automatic"
        assert await service.is_banned(a_identity) is not None
        assert a.id not in srv.server.sessions
        await c.expect("partner_left", timeout=10)
        again = HeadlessClient(srv.url, 1, device_token=a.device_token)
        with pytest.raises(ClientError, match="banned"):
            await again.connect()
        await again.close()
        await asyncio.sleep(1.0)
        assert not frames_from(c, 1), "c saw a flagged stranger"
        assert not captured_after(b, 1, hidden_wall), "a picture of a taken after it was hidden reached b"
        assert len(await service.list_reports(source="automatic", status=None)) == 2
        assert await metric(srv.url, 'sfu_moderation_flagged_labels_total{label="MARKER"}') == 2
        assert await metric(srv.url, "sfu_moderation_hide_seconds_count") == 2


async def test_prescreen_never_shows_a_flagged_publisher_to_a_new_partner(tmp_path: Path) -> None:
    async with moderated(tmp_path) as (srv, service, bans), clients(srv.url, 1, 2) as (a, b):
        a.show_marker()
        await asyncio.sleep(0.5)  # the marker is in a's video before anyone sees it
        await a.start()
        await b.start()
        assert (await b.expect("paired", timeout=10))["partner"] == a.id
        assert (await b.expect("moderation", timeout=10))["action"] == "partner_hidden"
        await a.wait_frame_from(2, timeout=10)
        await asyncio.sleep(2 * INTERVAL)
        assert not frames_from(b, 1), "b received a frame of a flagged publisher"
        assert any(f.stamp is None for f in b.received.frames)  # the placeholder instead
        assert await metric(srv.url, "sfu_moderation_prescreen_timeouts_total") == 0


def _children() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


async def test_a_full_classifier_queue_drops_samples_and_never_stalls_media(tmp_path: Path) -> None:
    before = _children()
    async with moderated(tmp_path, moderation_interval=0.5, moderation_queue=1) as (srv, service, bans):
        workers = _children() - before
        assert workers, "no classifier worker process"
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)  # the classifier never answers: the queue fills up
        try:
            async with clients(srv.url, 1, 2) as (a, b):
                await a.start()
                await b.start()
                await a.expect("paired", timeout=10)
                # Pre-screen gets no verdict: after its timeout both are shown anyway (fails open).
                await asyncio.gather(a.wait_frame_from(2, timeout=15), b.wait_frame_from(1, timeout=15))
                shown = time.monotonic()
                await asyncio.sleep(3.0)
                # Media keeps flowing despite the stalled classifier: frames arrive without gaps.
                for client, partner in ((a, 2), (b, 1)):
                    frames = [f.stamp.frame for f in frames_from(client, partner, since=shown + 0.5)]
                    assert len(frames) >= 10, f"{client.sender_id} got {len(frames)} frames from {partner}"
                    span = (frames[-1] - frames[0]) % 65536 + 1
                    assert len(frames) >= span // 2, f"{client.sender_id} lost frames: {len(frames)} of {span}"
                assert await metric(srv.url, "sfu_moderation_prescreen_timeouts_total") == 2
                # The two pictures given to the stalled worker (one in its hands, one queued) fill the
                # pool; once they time out, the next samples find the queue full: dropped and counted.
                for _ in range(150):
                    if await metric(srv.url, 'sfu_moderation_samples_dropped_total{why="queue_full"}') >= 1:
                        break
                    await asyncio.sleep(0.1)
                assert await metric(srv.url, 'sfu_moderation_samples_dropped_total{why="queue_full"}') >= 1
                assert await metric(srv.url, 'sfu_moderation_samples_dropped_total{why="timeout"}') >= 1
                assert await metric(srv.url, "sfu_moderation_samples_classified_total") == 0
                assert not a.messages("moderation") and not b.messages("moderation")
        finally:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


class LateCamera(StampedVideoTrack):
    """A camera that sends nothing until switched on."""

    def __init__(self, sender_id: int) -> None:
        super().__init__(sender_id, 320, 240, 15)
        self.on = asyncio.Event()

    async def recv(self):
        await self.on.wait()
        return await super().recv()


async def test_only_people_whose_video_reaches_the_server_are_paired(tmp_path: Path) -> None:
    # require_camera: the default
    async with running(Config(host="127.0.0.1", port=0, online_interval=0.5, moderation=ModerationSettings(
            data_dir=tmp_path / "data", moderation_classifier="none"))) as srv:
        late = LateCamera(3)
        async with clients(srv.url, 1, send_video=False) as (viewer,), clients(srv.url, 2) as (camera,), \
                clients(srv.url, 3, video_track=late) as (starter,):
            await camera.start()
            await camera.expect("waiting")
            await viewer.start()
            assert (await viewer.expect("waiting"))["type"] == "waiting"
            assert await viewer.expect("moderation") == {"type": "moderation", "action": "camera_required"}
            await starter.start()
            assert (await starter.expect("moderation"))["action"] == "camera_required"
            await asyncio.sleep(1.0)
            assert not viewer.messages("paired") and not camera.messages("paired") and not starter.messages("paired")
            late.on.set()  # the camera starts: queued at once, and paired with the one waiting with video
            assert (await starter.expect("paired", timeout=10))["partner"] == camera.id
            await starter.wait_frame_from(2, timeout=10)
            await camera.wait_frame_from(3, timeout=10)
            assert not viewer.messages("paired")
            # The camera stops mid-conversation: Next leaves the partner but does not queue again.
            late.on.clear()
            await asyncio.sleep(3.0)  # longer than video counts as reaching the server without a frame
            told = len(starter.messages("moderation"))
            await starter.next()
            await camera.expect("partner_left", timeout=10)
            await starter.expect("waiting", timeout=10)
            for _ in range(50):
                if len(starter.messages("moderation")) > told:
                    break
                await asyncio.sleep(0.1)
            assert starter.messages("moderation")[-1]["action"] == "camera_required"
            assert len(starter.messages("paired")) == 1 and srv.server.switchboard.camera.holding(starter.id)
            # Waiting for one's camera is not idleness, and Stop forgets it.
            await viewer.stop()
            await viewer.expect("idle")
            assert not srv.server.switchboard.camera.holding(viewer.id)


@pytest.mark.parametrize("forwarding", ["transcode"])
async def test_hidden_video_works_when_transcoding(tmp_path: Path, forwarding: str) -> None:
    settings = ModerationSettings(data_dir=tmp_path / "data", moderation_classifier="marker",
                                  moderation_interval=INTERVAL)
    config = Config(host="127.0.0.1", port=0, online_interval=0.5, forwarding=forwarding, moderation=settings)
    async with running(config) as srv, clients(srv.url, 1, 2) as (a, b):
        await pair_up(a, b)
        a.show_marker()
        await b.expect("moderation", timeout=10 * INTERVAL)
        hidden_at, hidden_wall = time.monotonic(), wall_ms()
        await eventually(lambda: any(f.stamp is None for f in b.frames_since(hidden_at)), "no placeholder")
        await a.wait_frame_from(2, since=hidden_at + 0.5, timeout=15)
        assert not captured_after(b, 1, hidden_wall)
