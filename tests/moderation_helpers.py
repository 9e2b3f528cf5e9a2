"""Helpers for the moderation tests: JPEG pictures, settings in a temp dir, a throwaway PostgreSQL."""

from __future__ import annotations

import glob
import io
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from sfu.moderation.records import EvidenceImage
from sfu.moderation.settings import ModerationSettings

ADMIN_TOKEN = "test-moderator-token-0123456789"


def make_jpeg(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real JPEG of one colour (encoded with FFmpeg's MJPEG encoder)."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = Fraction(1, 25)
    picture = np.full((height, width, 3), rgb, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


def jpeg_colour(data: bytes) -> tuple[int, int, int]:
    """The colour at the centre of a JPEG (decoded with FFmpeg)."""
    with av.open(io.BytesIO(data), mode="r", format="mjpeg") as container:
        frame = next(container.decode(video=0))
    rgb = frame.to_ndarray(format="rgb24")
    y, x = rgb.shape[0] // 2, rgb.shape[1] // 2
    return tuple(int(c) for c in rgb[y, x])  # type: ignore[return-value]


def picture(rgb: tuple[int, int, int], captured_at: float, width: int = 64, height: int = 48) -> EvidenceImage:
    return EvidenceImage(jpeg=make_jpeg(width, height, rgb), captured_at=captured_at, width=width, height=height)


def settings_for(data_dir: Path, database_url: str | None = None, **overrides) -> ModerationSettings:
    return ModerationSettings(data_dir=data_dir, database_url=database_url, admin_token=ADMIN_TOKEN, **overrides)


def device_of(token: str | None) -> str:
    """The device id in an ``sfu_device`` cookie."""
    assert token, "the server set no device cookie"
    return token.split(".")[1]


def close_to(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


class Clock:
    """An injectable wall clock that tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


# -- PostgreSQL ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@dataclass
class PostgresCluster:
    """A throwaway cluster on a free loopback port in a temp dir (``initdb``/``pg_ctl`` as ``postgres``)."""

    base: Path
    port: int
    bin: Path
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    @classmethod
    def start(cls) -> PostgresCluster:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL binaries not found")
        run_as: list[str] = []
        base = Path(tempfile.mkdtemp(prefix="sfu-pg-"))
        if os.geteuid() == 0:  # initdb refuses to run as root
            run_as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(base, "postgres", "postgres")
        cluster = cls(base=base, port=_free_port(), bin=bin_dir, run_as=run_as)
        try:
            cluster._run("initdb", "-D", str(base / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")
            options = f"-p {cluster.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
            cluster._run("pg_ctl", "-D", str(base / "data"), "-o", options, "-l", str(base / "log"), "-w", "-t", "60",
                         "start")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        if (self.base / "data" / "postmaster.pid").exists():
            subprocess.run([*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate",
                            "-w", "stop"], check=False, capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)

    async def create_database(self) -> str:
        """A new empty database; its URL."""
        import asyncpg  # type: ignore[import-untyped]

        name = "t_" + uuid.uuid4().hex[:12]
        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database="postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.database_url(name)

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self.run_as, str(self.bin / tool), *args], check=False, capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stdout}\n{result.stderr}")
