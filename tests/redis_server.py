"""A throwaway ``redis-server`` for tests: a free loopback port, a temporary directory, no persistence.

``redis_server`` (session scope) starts one for the whole run and kills it at the end; a test that
needs to stop and restart it (``RedisServer.stop``/``start``) uses ``own_redis_server`` instead, a
server of its own. Both skip cleanly when the ``redis-server`` binary is missing. Every test works
under its own key prefix (``unique_prefix``), so tests sharing one server never see each other's keys.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BINARY = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1; ``url`` stays the same across restarts."""

    def __init__(self, directory: Path) -> None:
        assert BINARY is not None
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = itertools.count()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        assert self.process is None, "already running"
        log = open(self.directory / f"redis-{next(self._log)}.log", "wb")
        self.process = subprocess.Popen(
            [
                str(BINARY), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", str(self.directory), "--protected-mode", "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port} (see {self.directory})")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server (its data is gone: nothing is saved)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def _started(directory: Path) -> Iterator[RedisServer]:
    if BINARY is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _started(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from _started(tmp_path)


def unique_prefix() -> str:
    return f"test-{os.getpid()}-{uuid.uuid4().hex[:10]}:"
