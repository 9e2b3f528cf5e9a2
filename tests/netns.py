"""Simulated networks for tests: Linux network namespaces, veth pairs and iptables.

A :class:`Lab` owns every namespace and process it creates and removes them all in :meth:`Lab.close`
(namespaces get a unique prefix, so a crashed run never collides with the next one). Nothing is sent
outside the namespaces: the machine's own network namespace is never touched.

The simulated Internet is one router namespace (``core``) with one /24 of 198.18.0.0/15 (the range
reserved for network tests) per attached site:

    site i:  core 198.18.i.1  <-veth->  198.18.i.2  (a public host, or the WAN side of a NAT router)
    NAT LAN: router 10.i.0.1  <-veth->  10.i.0.2    (the host behind the NAT)
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence


def unavailable_reason() -> Optional[str]:
    """Why namespaces cannot be used here, or ``None`` if they can."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (run the suite as root)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian: iproute2, iptables)"
    probe = f"sfuprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    try:
        nat = subprocess.run(
            ["ip", "netns", "exec", probe, "iptables", "-t", "nat", "-L", "-n"],
            capture_output=True,
            text=True,
        )
        if nat.returncode != 0:
            return f"iptables NAT is unavailable in a namespace: {nat.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def sh(*cmd: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


@dataclass
class Netns:
    name: str
    #: This host's address on its own network (the LAN address behind a NAT).
    address: str = ""
    #: The address others see: the host's own, or its NAT router's public address.
    public_address: str = ""

    def run(self, *cmd: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *cmd, check=check, timeout=timeout)

    def iptables(self, *rule: str) -> None:
        self.run("iptables", "-w", *rule)

    def udp_sockets(self) -> list[tuple[str, int]]:
        """Every bound UDP socket in this namespace, as (address, port)."""
        found = []
        for line in self.run("ss", "-Huan").stdout.splitlines():
            local = line.split()[3]
            host, _, port = local.rpartition(":")
            found.append((host.strip("[]"), int(port)))
        return found

    def listening(self, port: int, proto: str = "t") -> bool:
        out = self.run("ss", f"-Hln{proto}", f"sport = :{port}", check=False).stdout
        return bool(out.strip())

    def wait_listening(self, port: int, proto: str = "t", timeout: float = 20.0, proc: Optional[subprocess.Popen] = None) -> None:
        deadline = time.monotonic() + timeout
        while not self.listening(port, proto):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process in {self.name} exited ({proc.returncode}) before listening on {port}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port}/{proto} in {self.name} after {timeout} s")
            time.sleep(0.1)


@dataclass
class Lab:
    """Owns namespaces and the processes started in them; :meth:`close` removes everything."""

    prefix: str = field(default_factory=lambda: f"sfu{secrets.token_hex(3)}")
    namespaces: list[Netns] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    core: Optional[Netns] = None

    # -- building blocks -------------------------------------------------------------------------
    def namespace(self, role: str) -> Netns:
        ns = Netns(f"{self.prefix}-{role}")
        sh("ip", "netns", "add", ns.name)
        self.namespaces.append(ns)
        ns.run("ip", "link", "set", "lo", "up")
        return ns

    def link(self, a: Netns, a_if: str, a_cidr: str, b: Netns, b_if: str, b_cidr: str) -> None:
        """A veth pair created directly inside the two namespaces (never in the machine's own)."""
        sh("ip", "link", "add", a_if, "netns", a.name, "type", "veth", "peer", "name", b_if, "netns", b.name)
        for ns, ifname, cidr in ((a, a_if, a_cidr), (b, b_if, b_cidr)):
            ns.run("ip", "addr", "add", cidr, "dev", ifname)
            ns.run("ip", "link", "set", ifname, "up")

    def internet(self) -> Netns:
        if self.core is None:
            self.core = self.namespace("core")
            self.core.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        return self.core

    def public_host(self, role: str, site: int) -> Netns:
        """A host with a public address 198.18.<site>.2, directly on the simulated Internet."""
        core = self.internet()
        host = self.namespace(role)
        self.link(core, f"s{site}", f"198.18.{site}.1/24", host, "wan", f"198.18.{site}.2/24")
        host.run("ip", "route", "add", "default", "via", f"198.18.{site}.1")
        host.address = host.public_address = f"198.18.{site}.2"
        return host

    def _router(self, role: str, site: int) -> tuple[Netns, Netns]:
        router = self.public_host(f"{role}-nat", site)
        router.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        host = self.namespace(role)
        self.link(router, "lan", f"10.{site}.0.1/24", host, "eth0", f"10.{site}.0.2/24")
        host.run("ip", "route", "add", "default", "via", f"10.{site}.0.1")
        host.address = f"10.{site}.0.2"
        host.public_address = router.address
        return router, host

    def symmetric_nat_host(self, role: str, site: int) -> Netns:
        """A host behind a NAT with address- and port-dependent mapping and filtering.

        Every new destination gets a new random public port (``--random-fully``), and only replies
        from exactly the destination a packet went to come back in.
        """
        router, host = self._router(role, site)
        router.iptables("-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE", "--random-fully")
        router.iptables("-P", "FORWARD", "DROP")
        router.iptables("-A", "FORWARD", "-i", "lan", "-o", "wan", "-j", "ACCEPT")
        router.iptables("-A", "FORWARD", "-i", "wan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
        # Unsolicited packets to the router itself would otherwise create conntrack entries that
        # spoil later mappings.
        router.iptables("-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
        router.iptables("-A", "INPUT", "-i", "wan", "-j", "DROP")
        return host

    def one_to_one_nat_host(self, role: str, site: int) -> Netns:
        """A host with a private address and a public one mapped onto it (a cloud VM).

        The public address is 198.18.<site>.10; the host itself only knows 10.<site>.0.2.
        """
        router, host = self._router(role, site)
        public = f"198.18.{site}.10"
        router.run("ip", "addr", "add", f"{public}/24", "dev", "wan")
        router.iptables("-t", "nat", "-A", "PREROUTING", "-i", "wan", "-d", public, "-j", "DNAT", "--to-destination", host.address)
        router.iptables("-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-s", host.address, "-j", "SNAT", "--to-source", public)
        host.public_address = public
        return host

    def drop_udp(self, ns: Netns) -> None:
        """The host's network lets no UDP through (only TCP)."""
        ns.iptables("-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT")
        ns.iptables("-A", "OUTPUT", "-p", "udp", "-j", "DROP")
        ns.iptables("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
        ns.iptables("-A", "INPUT", "-p", "udp", "-j", "DROP")

    def web_only(self, ns: Netns, ports: Sequence[int] = (443,)) -> None:
        """The host's network lets out only TCP to ``ports`` (and the replies): no UDP, no other port."""
        ns.iptables("-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT")
        ns.iptables("-A", "OUTPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
        for port in ports:
            ns.iptables("-A", "OUTPUT", "-p", "tcp", "--dport", str(port), "-j", "ACCEPT")
        ns.iptables("-P", "OUTPUT", "DROP")

    # -- processes -------------------------------------------------------------------------------
    def spawn(self, ns: Netns, args: Sequence[str], log: Optional[str] = None, **kwargs) -> subprocess.Popen:
        """Start ``args`` inside ``ns``; killed in :meth:`close` if still running.

        stdin and stdout are pipes; stderr goes to ``log`` (a file path) or is discarded.
        """
        kwargs.setdefault("stdin", subprocess.PIPE)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("text", True)
        with open(log or os.devnull, "w") as stderr:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns.name, *args], start_new_session=True, stderr=stderr, **kwargs
            )
        self.processes.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        for proc in reversed(self.processes):
            self.stop(proc)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            # Anything still running inside (e.g. a browser a killed driver left behind) was started
            # by this lab: end it by pid before the namespace goes.
            pids = sh("ip", "netns", "pids", ns.name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns.name, check=False)
        self.namespaces.clear()
        self.core = None
