"""People behind hostile networks, in simulated networks: real NATs, real coturn, real Chromium.

Every participant runs as its own process inside a Linux network namespace (``tests/nat_peer.py``);
the server runs as ``python -m sfu serve`` inside another. Topology (see ``tests/netns.py``)::

    srv   198.18.1.2                          the server, on the public side
    a     10.2.0.2 -> symmetric NAT 198.18.2.2
    b     10.3.0.2 -> symmetric NAT 198.18.3.2
    turn  198.18.4.2                          coturn (TURN over UDP/TCP, and STUN)
    vm    10.5.0.2 -> 1:1 NAT 198.18.5.10     the server as a cloud VM
    u     10.6.0.2 -> symmetric NAT 198.18.6.2, and no UDP at all
    pub   198.18.7.2                          a host with a public address (for the controls)
    w     10.8.0.2 -> symmetric NAT 198.18.8.2, only TCP to ports 443 and 8080 (the web) gets out
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

from sfu.media.addresses import candidate_addresses
from sfu.turn import rest_credentials

from .netns import Lab, Netns, unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
PEER = str(ROOT / "tests" / "nat_peer.py")
TURN_PORT = 3478
TURN_TLS_PORT = 443
HTTP_PORT = 8080

_reason = unavailable_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


@dataclass
class Net:
    lab: Lab
    logs: Path
    srv: Netns
    a: Netns
    b: Netns
    turn: Netns
    vm: Netns
    u: Netns
    pub: Netns
    w: Netns
    turn_secret: str
    #: The certificate coturn presents on 443 (self-signed for the TURN server's address).
    turn_cert: Path

    @property
    def turn_url(self) -> str:
        return f"turn:{self.turn.address}:{TURN_PORT}?transport=tcp"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    if shutil.which("turnserver") is None:
        pytest.skip("coturn is not installed (Debian: apt-get install coturn)")
    logs = tmp_path_factory.mktemp("nat")
    lab = Lab()
    try:
        srv = lab.public_host("srv", 1)
        a = lab.symmetric_nat_host("a", 2)
        b = lab.symmetric_nat_host("b", 3)
        turn = lab.public_host("turn", 4)
        vm = lab.one_to_one_nat_host("vm", 5)
        u = lab.symmetric_nat_host("u", 6)
        lab.drop_udp(u)
        pub = lab.public_host("pub", 7)
        w = lab.symmetric_nat_host("w", 8)
        lab.web_only(w, (TURN_TLS_PORT, HTTP_PORT))
        secret = secrets.token_hex(16)
        cert, key = logs / "turn-cert.pem", logs / "turn-key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=turn.test",
             "-addext", f"subjectAltName=IP:{turn.address}", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )
        coturn = lab.spawn(
            turn,
            [
                "turnserver", "-n", "--no-cli", "--no-dtls",
                f"--listening-ip={turn.address}", f"--relay-ip={turn.address}",
                f"--listening-port={TURN_PORT}", f"--tls-listening-port={TURN_TLS_PORT}",
                f"--cert={cert}", f"--pkey={key}", "--min-port=49152", "--max-port=49999",
                "--fingerprint", "--realm=sfu.test", "--use-auth-secret",
                f"--static-auth-secret={secret}", f"--userdb={logs / 'turndb'}",
                # Relay to the sfu server only, as docs/deploying.md recommends.
                "--denied-peer-ip=0.0.0.0-255.255.255.255", f"--allowed-peer-ip={srv.address}",
                f"--pidfile={logs / 'turnserver.pid'}", f"--log-file={logs / 'turnserver.log'}",
                "--simple-log",
            ],
            log=str(logs / "turnserver.stderr"),
            stdout=subprocess.DEVNULL,
        )
        turn.wait_listening(TURN_PORT, "t", proc=coturn)
        turn.wait_listening(TURN_PORT, "u", proc=coturn)
        turn.wait_listening(TURN_TLS_PORT, "t", proc=coturn)
        yield Net(lab, logs, srv, a, b, turn, vm, u, pub, w, secret, cert)
    finally:
        lab.close()


# -- helpers ---------------------------------------------------------------------------------------
class Servers:
    def __init__(self, net: Net) -> None:
        self.net = net
        self.procs: list[subprocess.Popen] = []

    def start(self, ns: Netns, *args: str, host: Optional[str] = None) -> str:
        log = self.net.logs / f"server-{ns.name}-{len(self.procs)}.log"
        proc = self.net.lab.spawn(
            ns,
            [sys.executable, "-m", "sfu", "serve", "--host", host or ns.address, "--port", str(HTTP_PORT), *args],
            log=str(log),
            stdout=subprocess.DEVNULL,
            cwd=str(ROOT),
        )
        self.procs.append(proc)
        ns.wait_listening(HTTP_PORT, proc=proc)
        return f"http://{ns.public_address}:{HTTP_PORT}"

    def stop(self) -> None:
        for proc in self.procs:
            self.net.lab.stop(proc)


@pytest.fixture
def servers(net: Net) -> Iterator[Servers]:
    running = Servers(net)
    try:
        yield running
    finally:
        running.stop()


def peer(net: Net, ns: Netns, *args: str, env: Optional[dict] = None) -> subprocess.Popen:
    name = f"{ns.name}-{args[0]}-{secrets.token_hex(2)}.log"
    return net.lab.spawn(ns, [sys.executable, PEER, *args], log=str(net.logs / name), cwd=str(ROOT),
                         env={**os.environ, **(env or {})})


def read_json(proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    """The next JSON line the process prints."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"{proc.args} printed nothing within {timeout} s") from None
    if not line:
        raise AssertionError(f"{proc.args} exited ({proc.wait()}) without a result")
    return json.loads(line)


def release(*procs: subprocess.Popen) -> None:
    """Let peers that are holding their connection open finish."""
    for proc in procs:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            pass


def report(scenario: str, **facts: object) -> None:
    """One line per scenario for the record (shown with ``pytest -s``)."""
    print(f"\nNAT scenario | {scenario} | " + " | ".join(f"{k}={v}" for k, v in facts.items()), flush=True)


def summary(result: dict) -> str:
    pairs = ",".join(f"{p['local_type']}->{p['remote']}" for p in result.get("selected", []))
    return f"ok={result.get('ok')} media_after={result.get('frame_after')}s pair={pairs}"


def addresses_of(*hosts: Netns) -> set[str]:
    return {ip for host in hosts for ip in (host.address, host.public_address)}


def assert_learns_nothing_of(result: dict, *others: Netns) -> None:
    """Nothing this participant received (signaling, SDP, candidates) holds another's address."""
    received = json.dumps(result.get("messages", []))
    for ip in addresses_of(*others):
        assert ip not in received, f"{ip} of another participant was sent to this one"
    for sdp in (m["sdp"] for m in result.get("messages", []) if m.get("type") == "answer"):
        assert not set(candidate_addresses(sdp)) & addresses_of(*others)


def visit(net: Net, ns: Netns, url: str, sender: int, partner: int, env: Optional[dict] = None) -> subprocess.Popen:
    return peer(net, ns, "visit", "--url", url, "--sender", str(sender), "--partner", str(partner),
                "--host-address", ns.address, env=env)


def answer_of(result: dict) -> str:
    return next(m["sdp"] for m in result["messages"] if m.get("type") == "answer")


# -- the scenarios ---------------------------------------------------------------------------------
def test_symmetric_nats_cannot_connect_directly(net: Net) -> None:
    """The control: behind two symmetric NATs, a direct connection fails even with STUN."""
    stun = f"stun:{net.turn.address}:{TURN_PORT}"
    pairs = [(net.a, net.b), (net.a, net.pub)]  # the second one must connect: the test works
    procs = []
    for offerer, answerer in pairs:
        o = peer(net, offerer, "p2p", "--role", "offer", "--stun", stun, "--wait", "12")
        w = peer(net, answerer, "p2p", "--role", "answer", "--stun", stun, "--wait", "12")
        procs.append((o, w))
    try:
        results = []
        for o, w in procs:
            offer = read_json(o, 30)
            w.stdin.write(json.dumps(offer) + "\n")
            w.stdin.flush()
            answer = read_json(w, 30)
            o.stdin.write(json.dumps(answer) + "\n")
            o.stdin.flush()
            results.append((offer, answer))
        outcomes = [(read_json(o, 40), read_json(w, 40)) for o, w in procs]
    finally:
        release(*(p for pair in procs for p in pair))

    (offer_ab, answer_ab), _ = results
    # Both sides learned their public address from STUN: the failure is the NAT's doing.
    assert net.a.public_address in candidate_addresses(offer_ab["sdp"])
    assert net.b.public_address in candidate_addresses(answer_ab["sdp"])
    (a_to_b, b_from_a), (a_to_pub, pub_from_a) = outcomes
    report("a (sym NAT) <-> b (sym NAT), direct, STUN", a=a_to_b["state"], b=b_from_a["state"], waited="12s")
    report("a (sym NAT) <-> pub (public), direct, STUN", a=a_to_pub["state"], pub=pub_from_a["state"])
    assert not a_to_b["connected"] and not b_from_a["connected"], (a_to_b["state"], b_from_a["state"])
    assert a_to_pub["connected"] and pub_from_a["connected"], (a_to_pub["state"], pub_from_a["state"])


def test_symmetric_nats_see_each_other_through_the_server(net: Net, servers: Servers) -> None:
    url = servers.start(net.srv, "--media-address", net.srv.address)
    one, two = visit(net, net.a, url, 1, 2), visit(net, net.b, url, 2, 1)
    try:
        r1, r2 = read_json(one), read_json(two)
    finally:
        release(one, two)
    report("a (sym NAT) + b (sym NAT) via server", a=summary(r1), b=summary(r2))
    assert r1["ok"], r1.get("error")
    assert r2["ok"], r2.get("error")
    for result, other in ((r1, net.b), (r2, net.a)):
        assert_learns_nothing_of(result, other)
        # Media only ever came from, or was tried with, the server.
        assert set(result["remote_addresses"]) == {net.srv.address}
        assert [p["remote"].split(":")[0] for p in result["selected"]] == [net.srv.address]


def test_no_udp_connects_through_coturn_over_tcp(net: Net, servers: Servers) -> None:
    url = servers.start(net.srv, "--media-address", net.srv.address, "--turn-secret", net.turn_secret,
                        "--turn-url", net.turn_url, "--turn-ttl", "600")
    blocked, partner = visit(net, net.u, url, 3, 1), visit(net, net.a, url, 1, 3)
    try:
        r3, r1 = read_json(blocked), read_json(partner)
    finally:
        release(blocked, partner)
    report("u (no UDP) + a (sym NAT) via server, TURN/TCP", u=summary(r3), a=summary(r1))
    assert r3["ok"], r3.get("error")
    assert r1["ok"], r1.get("error")
    assert [p["local_type"] for p in r3["selected"]] == ["relay"]
    (ice,) = next(m for m in r3["messages"] if m["type"] == "welcome")["iceServers"]
    assert ice["urls"] == net.turn_url and ice["username"].split(":")[0].isdigit()
    (other_ice,) = next(m for m in r1["messages"] if m["type"] == "welcome")["iceServers"]
    assert other_ice["username"] != ice["username"], "credentials must be per client"
    for result, other in ((r3, net.a), (r1, net.u)):
        assert_learns_nothing_of(result, other)
        assert set(result["remote_addresses"]) == {net.srv.address}


def test_web_only_network_connects_through_turn_over_tls_on_443(net: Net, servers: Servers) -> None:
    """Only TCP to 443 (and the site) gets out: TURN over TLS on 443, as in docs/deploying.md."""
    turns = f"turns:{net.turn.address}:{TURN_TLS_PORT}?transport=tcp"
    url = servers.start(net.srv, "--media-address", net.srv.address, "--turn-secret", net.turn_secret,
                        "--turn-url", turns)
    # The client trusts the test's self-signed certificate as it would a real one.
    walled = visit(net, net.w, url, 4, 1, env={"SSL_CERT_FILE": str(net.turn_cert)})
    partner = visit(net, net.a, url, 1, 4)
    try:
        r4, r1 = read_json(walled), read_json(partner)
    finally:
        release(walled, partner)
    report("w (TCP 443 only) + a (sym NAT) via server, TURN/TLS 443", w=summary(r4), a=summary(r1))
    assert r4["ok"], r4.get("error")
    assert r1["ok"], r1.get("error")
    assert [p["local_type"] for p in r4["selected"]] == ["relay"]
    assert set(r4["remote_addresses"]) == {net.srv.address}
    assert_learns_nothing_of(r4, net.a)
    assert_learns_nothing_of(r1, net.w)


def test_coturn_refuses_expired_and_forged_credentials(net: Net) -> None:
    valid = rest_credentials(net.turn_secret, 600)
    expired = rest_credentials(net.turn_secret, -60)
    forged = rest_credentials("not-the-secret", 600)
    # A valid credential with its expiry pushed later: the HMAC no longer matches.
    stretched_user = f"{valid.expires + 86400}:{valid.username.split(':', 1)[1]}"
    cases = {
        "valid": (valid.username, valid.credential),
        "expired": (expired.username, expired.credential),
        "forged": (forged.username, forged.credential),
        "stretched": (stretched_user, valid.credential),
    }
    server = f"{net.turn.address}:{TURN_PORT}"
    # Relaying is limited to the sfu server: a client cannot use the TURN server to reach anyone else.
    peers = ["--peer", f"{net.srv.address}:40000", "--peer", f"{net.pub.address}:40000"]
    procs = {
        name: peer(net, net.u, "turn-alloc", "--server", server, "--username", user, "--credential", cred, *peers)
        for name, (user, cred) in cases.items()
    }
    try:
        results = {name: read_json(proc, 30) for name, proc in procs.items()}
    finally:
        release(*procs.values())
    for name, result in results.items():
        report(f"TURN/TCP allocation from u, {name} credentials", **result)
    assert results["valid"]["allocated"], results["valid"]
    assert results["valid"]["peers"][f"{net.srv.address}:40000"] == "allowed"
    assert "403" in results["valid"]["peers"][f"{net.pub.address}:40000"], results["valid"]
    for name in ("expired", "forged", "stretched"):
        assert not results[name]["allocated"], (name, results[name])
        assert "401" in results[name]["error"] or "Unauthorized" in results[name]["error"], results[name]


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium is not installed")
def test_chromium_without_udp_connects_through_coturn(net: Net, servers: Servers) -> None:
    pytest.importorskip("playwright")
    url = servers.start(net.srv, "--media-address", net.srv.address, "--turn-secret", net.turn_secret,
                        "--turn-url", net.turn_url)
    browser = peer(net, net.u, "browser", "--url", url, "--sender", "7", "--partner", "1")
    partner = visit(net, net.a, url, 1, 7)
    try:
        rb, r1 = read_json(browser, 90), read_json(partner, 90)
    finally:
        release(browser, partner)
    report("Chromium in u (no UDP) + a (sym NAT) via server, TURN/TCP", chromium=f"ok={rb.get('ok')} selected={rb.get('selected')}", a=summary(r1))
    assert rb["ok"], rb.get("error") or rb.get("state")
    assert r1["ok"], r1.get("error")
    assert not rb["secureContext"] and not rb["camera"], "plain http must not get the camera"
    assert rb["selected"]["localType"] == "relay" and rb["selected"]["relayProtocol"] == "tcp", rb["selected"]
    assert_learns_nothing_of(rb, net.a)
    assert set(rb["remoteCandidates"]) <= {net.srv.address}, rb["remoteCandidates"]
    assert_learns_nothing_of(r1, net.u)
    assert set(r1["remote_addresses"]) == {net.srv.address}


def test_cloud_vm_behind_one_to_one_nat_with_port_range(net: Net, servers: Servers) -> None:
    low, high = 40000, 40003
    # With a STUN server too, so that the server-reflexive candidates are gathered from the range.
    url = servers.start(net.vm, "--media-address", net.vm.address, "--public-ip", net.vm.public_address,
                        "--port-range", f"{low}-{high}", "--ice-server", f"stun:{net.turn.address}:{TURN_PORT}")
    one, two = visit(net, net.a, url, 1, 2), visit(net, net.b, url, 2, 1)
    try:
        r1, r2 = read_json(one), read_json(two)
        sockets = net.vm.udp_sockets()  # while both are connected
    finally:
        release(one, two)
    report("a + b via server on 1:1 NAT VM, --public-ip, --port-range 40000-40003", a=summary(r1), b=summary(r2),
           vm_udp_sockets=sorted(sockets))
    assert r1["ok"], r1.get("error")
    assert r2["ok"], r2.get("error")
    for result in (r1, r2):
        answer = answer_of(result)
        assert set(candidate_addresses(answer)) == {net.vm.public_address}, answer
        lines = [line.split() for line in answer.splitlines() if line.startswith("a=candidate:")]
        assert {fields[7] for fields in lines} == {"host", "srflx"}, answer
        ports = [int(fields[5]) for fields in lines]
        assert ports and all(low <= port <= high for port in ports), ports
    assert len(sockets) >= 2, sockets
    assert all(low <= port <= high for _, port in sockets), sockets
    assert {host for host, _ in sockets} == {net.vm.address}


def test_cloud_vm_without_public_ip_is_unreachable(net: Net, servers: Servers) -> None:
    """The control for ``--public-ip``: announcing the VM's private address, nobody gets through."""
    url = servers.start(net.vm, "--media-address", net.vm.address)
    one = peer(net, net.a, "visit", "--url", url, "--sender", "1", "--partner", "2",
               "--host-address", net.a.address, "--timeout", "8")
    try:
        result = read_json(one)
    finally:
        release(one)
    report("a via server on 1:1 NAT VM without --public-ip", ok=result["ok"], error=result.get("error"))
    assert net.vm.address in candidate_addresses(answer_of(result))
    assert not result["ok"] and result.get("connected_after") is None, result


def test_cloud_vm_with_coturn_beside_the_server(net: Net, servers: Servers) -> None:
    """The deployment of docs/deploying.md: one VM behind 1:1 NAT runs both sfu and coturn.

    coturn relays to the server's announced (public) address, which is also coturn's own
    ``external-ip``: coturn maps it back to the private address itself, so no hairpin NAT is needed
    (the cloud NAT here has none).
    """
    vm, public = net.vm, net.vm.public_address
    coturn = net.lab.spawn(
        vm,
        [
            "turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls",
            f"--listening-ip={vm.address}", f"--relay-ip={vm.address}", f"--external-ip={public}/{vm.address}",
            f"--listening-port={TURN_PORT}", "--min-port=49152", "--max-port=49999",
            "--fingerprint", "--realm=sfu.test", "--use-auth-secret", f"--static-auth-secret={net.turn_secret}",
            "--denied-peer-ip=0.0.0.0-255.255.255.255", f"--allowed-peer-ip={public}",
            f"--userdb={net.logs / 'vm-turndb'}", f"--pidfile={net.logs / 'vm-turnserver.pid'}",
            f"--log-file={net.logs / 'vm-turnserver.log'}", "--simple-log",
        ],
        log=str(net.logs / "vm-turnserver.stderr"),
        stdout=subprocess.DEVNULL,
    )
    try:
        vm.wait_listening(TURN_PORT, "t", proc=coturn)
        url = servers.start(vm, "--media-address", vm.address, "--public-ip", public, "--port-range", "40000-40009",
                            "--turn-secret", net.turn_secret, "--turn-url", f"turn:{public}:{TURN_PORT}?transport=tcp")
        blocked, partner = visit(net, net.u, url, 3, 1), visit(net, net.a, url, 1, 3)
        try:
            r3, r1 = read_json(blocked), read_json(partner)
        finally:
            release(blocked, partner)
    finally:
        net.lab.stop(coturn)
    report("u (no UDP) + a (sym NAT) via VM behind 1:1 NAT running sfu + coturn (TURN/TCP)",
           u=summary(r3), a=summary(r1))
    assert r3["ok"], r3.get("error")
    assert r1["ok"], r1.get("error")
    assert [p["local_type"] for p in r3["selected"]] == ["relay"]
    assert_learns_nothing_of(r3, net.a)
    assert_learns_nothing_of(r1, net.u)


NGINX_CONF = """
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    # As in docs/deploying.md.
    server {{
        listen {address}:443 ssl;
        ssl_certificate     {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:8080;
            proxy_set_header Host $host;
        }}
        location /ws {{
            proxy_pass http://127.0.0.1:8080;
            proxy_set_header Host $host;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium is not installed")
def test_only_443_chromium_through_https_proxy_and_turn_tls(net: Net, servers: Servers) -> None:
    """The strictest network: only TCP 443 gets out. Chromium loads the site over HTTPS through
    nginx (WebSocket upgrade on /ws), gets the camera (secure context), and its media goes over
    TURN/TLS on 443; sfu listens on loopback only, behind the proxy, as in docs/deploying.md."""
    pytest.importorskip("playwright")
    srv = net.srv
    prefix = net.logs / "nginx"
    prefix.mkdir(exist_ok=True)
    cert, key = prefix / "cert.pem", prefix / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=chat.test",
         "-addext", f"subjectAltName=IP:{srv.address}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, address=srv.address, cert=cert, key=key))
    nginx = net.lab.spawn(srv, ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf),
                                "-g", "daemon off;"], log=str(prefix / "stderr"), stdout=subprocess.DEVNULL)
    try:
        srv.wait_listening(443, proc=nginx)
        turns = f"turns:{net.turn.address}:{TURN_TLS_PORT}?transport=tcp"
        servers.start(srv, "--public-ip", srv.address, "--turn-secret", net.turn_secret, "--turn-url", turns,
                      host="127.0.0.1")
        url = f"https://{srv.address}"
        browser = peer(net, net.w, "browser", "--url", url, "--sender", "7", "--partner", "1", "--insecure-tls")
        partner = visit(net, net.a, url, 1, 7, env={"SSL_CERT_FILE": str(cert)})
        try:
            rb, r1 = read_json(browser, 90), read_json(partner, 90)
        finally:
            release(browser, partner)
    finally:
        net.lab.stop(nginx)
    report("Chromium in w (TCP 443 only) + a (sym NAT): HTTPS via nginx, TURN/TLS 443",
           chromium=f"ok={rb.get('ok')} secure={rb.get('secureContext')} camera={rb.get('camera')} "
                    f"selected={rb.get('selected')}", a=summary(r1))
    assert rb["ok"], rb.get("error") or rb.get("state")
    assert r1["ok"], r1.get("error")
    assert rb["secureContext"] and rb["camera"]
    assert rb["selected"]["localType"] == "relay" and rb["selected"]["relayProtocol"] == "tls", rb["selected"]
    assert_learns_nothing_of(rb, net.a)
    assert set(rb["remoteCandidates"]) <= {srv.address}, rb["remoteCandidates"]
    assert_learns_nothing_of(r1, net.w)
    assert set(r1["remote_addresses"]) == {srv.address}
