"""Shared fixtures: an in-process server on a free loopback port, a `sfu serve` process, clients."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from sfu.config import Config
from sfu.headless.client import HeadlessClient

from .ops_helpers import Running as RunningServer
from .ops_helpers import running

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory) -> Iterator[str]:
    """Every server the tests start, in this process or as `sfu serve`, keeps its moderation database,
    evidence and device secret in a temporary directory (the default is $XDG_DATA_HOME/sfu)."""
    base = str(tmp_path_factory.mktemp("xdg-data"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", base)
        yield base


@pytest.fixture(scope="session", autouse=True)
def no_default_classifier() -> Iterator[None]:
    """``sfu serve`` processes the tests start classify no pictures unless a test asks for a
    classifier on the command line (flags beat the environment): NudeNet is installed with the test
    tools, and ``auto`` (the product's default) would load it in every one of them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SFU_MODERATION_CLASSIFIER", "none")
        yield


@pytest.fixture(scope="session", autouse=True)
def no_overload_shedding() -> Iterator[None]:
    """``sfu serve`` processes the tests start never refuse newcomers for being overloaded unless a
    test sets ``--max-loop-lag``/``--max-cpu`` on the command line: the machine running the tests is
    shared with the clients (and often with other work), and its load is not what a test checks."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SFU_MAX_LOOP_LAG", "0")
        patch.setenv("SFU_MAX_CPU", "0")
        yield


@pytest.fixture
def config() -> Config:
    """Override in a test module to change the server's settings."""
    return Config(host="127.0.0.1", port=0, online_interval=0.2)


@pytest.fixture
async def server(config: Config) -> AsyncIterator[RunningServer]:
    """An in-process server on a free loopback port (``.url``, ``.server``); without a picture
    classifier unless ``config`` names one (see :func:`ops_helpers.without_default_classifier`)."""
    async with running(config) as srv:
        yield srv


ClientFactory = Callable[..., Awaitable[HeadlessClient]]


@pytest.fixture
async def make_client(server: RunningServer) -> AsyncIterator[ClientFactory]:
    """``await make_client(sender_id, connect=True, **kwargs)``: closed at the end of the test."""
    made: list[HeadlessClient] = []

    async def make(sender_id: int, *, connect: bool = True, **kwargs) -> HeadlessClient:
        client = HeadlessClient(server.url, sender_id, **kwargs)
        made.append(client)
        if connect:
            await client.connect()
        return client

    yield make
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def serve_process(tmp_path) -> Iterator[Callable[..., tuple[str, subprocess.Popen]]]:
    """Start ``sfu serve`` as a separate process, as users do; stopped at the end of the test.

    Its output goes to ``serve-N.log`` in the test's temporary directory (a pipe nobody reads
    could fill up and block the server)."""
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[str, subprocess.Popen]:
        port = free_port()
        # Its own default data directory ($XDG_DATA_HOME/sfu under tmp_path/xdg-N): no database lock
        # shared with the servers of other tests.
        env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / f"xdg-{len(procs)}")}
        with open(tmp_path / f"serve-{len(procs)}.log", "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sfu", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz")
        return url, proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
