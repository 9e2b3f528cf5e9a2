"""A real `sfu serve` process: SIGTERM drains and exits in bounds; TLS serves the page."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import aiohttp
import pytest

from sfu.headless.client import HeadlessClient

from .conftest import free_port
from .routing import pair_up

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Process:
    def __init__(self, args: list[str], log: Path, scheme: str = "http", env: dict[str, str] | None = None) -> None:
        """``sfu serve`` on a free loopback port, given as flags or (with ``env``) as SFU_HOST/SFU_PORT."""
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.log = log
        self._out = open(log, "w")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SFU_")}
        clean["SFU_MODERATION_CLASSIFIER"] = "none"  # no NudeNet in every test server (tests may set one)
        clean.update(SFU_MAX_LOOP_LAG="0", SFU_MAX_CPU="0")  # no overload shedding unless a test sets it
        if env is None:
            args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        else:
            clean.update(env, SFU_HOST="127.0.0.1", SFU_PORT=str(self.port))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sfu", "serve", *args],
            cwd=ROOT,
            env=clean,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, ssl_context: ssl.SSLContext | None = None, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(self.url + "/readyz", ssl=ssl_context) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert self.proc.poll() is None, self.output()
                assert time.monotonic() < deadline, "server did not start"
                await asyncio.sleep(0.1)

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for p in started:
        p.stop()


async def test_sigterm_drains_clients_and_exits_in_bounds(processes: list[Process], tmp_path: Path) -> None:
    drain = 3.0
    p = Process(["--drain-timeout", str(drain), "--log-format", "json"], tmp_path / "serve.log")
    processes.append(p)
    await p.wait_ready()
    a, b = HeadlessClient(p.url, 1), HeadlessClient(p.url, 2)
    http = aiohttp.ClientSession()
    try:
        await a.connect()
        await b.connect()
        await pair_up(a, b)
        # A client that never answers the close handshake must not hold the exit.
        stubborn = await http.ws_connect(p.url + "/ws", autoclose=False, autoping=False)
        assert not stubborn.closed

        sent = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        for client in (a, b):
            error = await client.expect("error", timeout=20)
            assert error["code"] == "shutting_down"
            await client.expect("_closed", timeout=20)
        rc = await asyncio.get_running_loop().run_in_executor(None, p.proc.wait, 30)
        took = time.monotonic() - sent
    finally:
        await a.close()
        await b.close()
        await http.close()
    log = p.output()
    assert rc == 0, log
    assert took < drain + 5.0 + 5.0, took  # drain budget + hard-exit grace + process start-up slack
    print(f"\nSIGTERM to exit: {took:.2f} s (drain timeout {drain} s), exit code {rc}")
    assert "Traceback" not in log
    lines = log.splitlines()
    assert all(line.startswith("{") for line in lines), [line for line in lines if not line.startswith("{")][:3]
    # client addresses are hashed; only the server's own start-up lines name its addresses
    assert not [line for line in lines if "127.0.0.1" in line and '"listening"' not in line and "media on" not in line]
    assert not [line for line in lines if "v=0" in line or "a=fingerprint" in line]  # no SDP
    connected = [json.loads(line) for line in lines if '"connected"' in line]
    assert len(connected) == 3 and all(c["client"].startswith("ip-") for c in connected)
    events = [json.loads(line).get("event") for line in lines]
    assert "shutdown" in events and "draining" in events and "stopped" in events
    assert events.count("ended") == 3


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sfu test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_tls_serves_page_and_signaling(processes: list[Process], tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    p = Process(["--tls-cert", str(cert), "--tls-key", str(key)], tmp_path / "serve.log", scheme="https")
    processes.append(p)
    trust = ssl.create_default_context(cafile=str(cert))
    await p.wait_ready(trust)
    async with aiohttp.ClientSession() as http:
        async with http.get(p.url + "/", ssl=trust) as response:
            assert response.status == 200
            assert "<html" in (await response.text()).lower()
        async with http.ws_connect(p.url.replace("https", "wss") + "/ws", ssl=trust) as ws:
            welcome = await ws.receive_json(timeout=10)
            assert welcome["type"] == "welcome"
        # Plain HTTP on the TLS port is not served; an untrusted certificate is refused by clients.
        with pytest.raises(aiohttp.ClientError):
            async with http.get(p.url.replace("https", "http") + "/healthz") as response:
                await response.read()
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.get(p.url + "/healthz") as response:
                await response.read()
    assert f"on https://127.0.0.1:{p.port}" in p.output()


def test_unusable_certificate_is_a_configuration_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    result = subprocess.run(
        [sys.executable, "-m", "sfu", "serve", "--tls-cert", str(bad), "--tls-key", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "tls_cert/tls_key: cannot load" in result.stderr and "Traceback" not in result.stderr


async def test_environment_configures_a_real_server(processes: list[Process], tmp_path: Path) -> None:
    """SFU_* variables reach the running server: a participant cap of 1, visible in /metrics."""
    p = Process([], tmp_path / "serve.log", env={"SFU_MAX_PARTICIPANTS": "1"})
    processes.append(p)
    await p.wait_ready()
    async with aiohttp.ClientSession() as http:
        first = await http.ws_connect(p.url + "/ws")
        assert (await first.receive_json(timeout=10))["type"] == "welcome"
        second = await http.ws_connect(p.url + "/ws")
        refused = await second.receive_json(timeout=10)
        assert refused["code"] == "server_full"
        async with http.get(p.url + "/readyz") as response:
            assert response.status == 503
        async with http.get(p.url + "/metrics") as response:
            assert 'sfu_errors_total{code="server_full"} 1.0' in await response.text()
        await first.close()
        await second.close()


async def test_sigterm_with_drain_grace_reports_not_ready_first(processes: list[Process], tmp_path: Path) -> None:
    """Behind a load balancer: SIGTERM -> /readyz 503 while pairs keep streaming -> drain -> exit 0."""
    grace = 3.0
    p = Process(["--drain-grace", str(grace), "--drain-timeout", "3"], tmp_path / "serve.log")
    processes.append(p)
    await p.wait_ready()
    a, b = HeadlessClient(p.url, 1), HeadlessClient(p.url, 2)
    try:
        await a.connect()
        await b.connect()
        await pair_up(a, b)
        p.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        async with aiohttp.ClientSession() as http:
            status = None
            while time.monotonic() - sent < grace - 0.5:
                async with http.get(p.url + "/readyz") as response:
                    status = response.status
                    reason = (await response.json())["reason"]
                if status == 503:
                    break
                await asyncio.sleep(0.05)
            assert status == 503 and reason == "draining", (status, p.output())
            async with http.get(p.url + "/healthz") as response:
                assert response.status == 200  # alive, still serving
        # still streaming during the grace period, nobody told to leave yet
        if time.monotonic() - sent < grace - 1.0:
            await a.wait_frame_from(2, since=time.monotonic(), timeout=5)
            assert not a.messages("error")
        assert (await a.expect("error", timeout=grace + 10))["code"] == "shutting_down"
        rc = await asyncio.get_running_loop().run_in_executor(None, p.proc.wait, 30)
        took = time.monotonic() - sent
        assert rc == 0, p.output()
        assert took >= grace - 0.2, took
        print(f"\nSIGTERM with {grace} s grace: exit code {rc} after {took:.2f} s")
    finally:
        await a.close()
        await b.close()
