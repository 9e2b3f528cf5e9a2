"""Janus (Debian's ``janus`` package) as a benchmark target: a minimal configuration, start, stop.

Only the VideoRoom plugin and the plain HTTP transport are loaded; HTTP listens on 127.0.0.1; ICE
gathers on one address only (full ICE, half-trickle, no STUN, no TURN); media ports come from one
range. The configuration is written to a fresh folder and Janus is started with ``janus -F`` on it.

Janus never gathers ICE candidates on a loopback interface (ice.c skips ``IFF_LOOPBACK``), so its
media cannot use 127.0.0.1. :func:`private_network` makes a network namespace of the benchmark's
own with a veth pair, whose address Janus and its clients use: nothing reaches any other network
(two addresses of one namespace talk through its loopback device).
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

JANUS = "/usr/bin/janus"
PACKAGE = "janus"
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
VIDEOROOM = "libjanus_videoroom.so"
PR_SET_PDEATHSIG = 1
HTTP = "libjanus_http.so"


@dataclass(frozen=True)
class JanusSettings:
    http_port: int
    rtp_ports: tuple[int, int] = (20000, 20999)
    address: str = "127.0.0.1"  #: where the HTTP API listens
    ice_address: str = "127.0.0.1"  #: the only address ICE gathers on
    plugins_folder: Path = LIB / "plugins"
    transports_folder: Path = LIB / "transports"
    events_folder: Path = LIB / "events"
    loggers_folder: Path = LIB / "loggers"
    #: 3 = warnings and errors (the sfu side logs at ``warning`` too); 4 is Janus's default.
    debug_level: int = 3

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.http_port}/janus"


def modules_in(folder: Path) -> list[str]:
    """The module names Janus would load from ``folder`` (files ending in ``.so``), sorted."""
    try:
        return sorted(p.name for p in folder.iterdir() if p.name.endswith(".so"))
    except OSError:
        return []


def _quote(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid libconfig string


def janus_config(settings: JanusSettings, config_dir: Path) -> dict[str, str]:
    """The configuration files (name -> text) for ``janus -F config_dir``."""
    plugins = [m for m in modules_in(settings.plugins_folder) if m != VIDEOROOM]
    transports = [m for m in modules_in(settings.transports_folder) if m != HTTP]
    loggers = modules_in(settings.loggers_folder)
    low, high = settings.rtp_ports
    main = f"""general: {{
	configs_folder = {_quote(str(config_dir))}
	plugins_folder = {_quote(str(settings.plugins_folder))}
	transports_folder = {_quote(str(settings.transports_folder))}
	events_folder = {_quote(str(settings.events_folder))}
	loggers_folder = {_quote(str(settings.loggers_folder))}
	debug_level = {settings.debug_level}
	server_name = "sfu-benchmark"
	session_timeout = 60
}}
media: {{
	rtp_port_range = "{low}-{high}"
}}
nat: {{
	nice_debug = false
	full_trickle = false
	ice_lite = false
	ice_tcp = false
	ice_enforce_list = {_quote(settings.ice_address)}
	ignore_mdns = true
}}
plugins: {{
	disable = {_quote(",".join(plugins))}
}}
transports: {{
	disable = {_quote(",".join(transports))}
}}
loggers: {{
	disable = {_quote(",".join(loggers))}
}}
events: {{
	broadcast = false
}}
"""
    http = f"""general: {{
	json = "compact"
	base_path = "/janus"
	http = true
	port = {settings.http_port}
	ip = {_quote(settings.address)}
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
"""
    videoroom = "general: {\n}\n"  # no static rooms: each pair's room is created through the API
    return {
        "janus.jcfg": main,
        "janus.transport.http.jcfg": http,
        "janus.plugin.videoroom.jcfg": videoroom,
    }


def write_config(settings: JanusSettings, config_dir: Path) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    for name, text in janus_config(settings, config_dir).items():
        (config_dir / name).write_text(text)


def installed() -> bool:
    return os.access(JANUS, os.X_OK)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started Janus dies (even killed)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(settings: JanusSettings, config_dir: Path, log: Path, timeout: float = 30.0) -> subprocess.Popen:
    """Write the configuration, start Janus, and return once its HTTP API answers ``info``."""
    write_config(settings, config_dir)
    cmd = [JANUS, "-F", str(config_dir), "-C", str(config_dir / "janus.jcfg"), "--disable-colors"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent)
    deadline = time.monotonic() + timeout
    request = json.dumps({"janus": "info", "transaction": "ready"}).encode()
    while True:
        try:
            with urllib.request.urlopen(settings.url, data=request, timeout=1) as response:
                if json.loads(response.read()).get("janus") == "server_info":
                    return proc
        except (OSError, ValueError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"janus did not start; see {log}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    """SIGINT (Janus's clean shutdown), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: The address Janus and its clients use inside :func:`private_network` (198.18.0.0/15: reserved
#: for network benchmarks; the namespace is isolated, so it collides with nothing).
NETNS_ADDRESS = "198.18.0.1"


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@contextmanager
def private_network() -> Iterator[str]:
    """A fresh network namespace (needs root) with loopback and one veth pair up; yields its name.
    Its address is :data:`NETNS_ADDRESS`. Removed on exit, whatever happens."""
    name = f"sfu-janus-{secrets.token_hex(3)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "bench0", "type", "veth", "peer", "name", "bench1")
        _ip("-n", name, "addr", "add", f"{NETNS_ADDRESS}/30", "dev", "bench0")
        _ip("-n", name, "link", "set", "bench0", "up")
        _ip("-n", name, "link", "set", "bench1", "up")  # the peer up: bench0 is RUNNING, as Janus wants
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
