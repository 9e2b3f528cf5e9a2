"""Addresses the server announces in its SDP: every rewrite of SDP address lines lives here.

Behind 1:1 NAT (a cloud VM with a private interface address and a public one mapped onto it), the
server's host candidates carry the private address, which nobody outside can reach. :func:`announce`
puts the public address in their place, and in the ``c=`` lines that repeat it. The sockets stay bound
to the private address; the NAT maps the public one onto it in both directions.
"""

from __future__ import annotations

import ipaddress
from typing import Optional


def announce(sdp: str, public_ip: Optional[str]) -> str:
    """``sdp`` with ``public_ip`` in place of the address of every host candidate of its family."""
    if not public_ip:
        return sdp
    public = ipaddress.ip_address(public_ip)
    replaced: set[str] = set()
    lines = sdp.split("\r\n")
    for i, line in enumerate(lines):
        if not line.startswith("a=candidate:"):
            continue
        # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
        fields = line.split(" ")
        if len(fields) < 8 or fields[6] != "typ" or fields[7] != "host":
            continue
        if _version(fields[4]) != public.version:
            continue
        replaced.add(fields[4])
        fields[4] = str(public)
        lines[i] = " ".join(fields)
    family = "IP4" if public.version == 4 else "IP6"
    for i, line in enumerate(lines):
        if line.startswith("c=IN ") and line.split(" ")[-1] in replaced:
            lines[i] = f"c=IN {family} {public}"
        elif line.startswith("a=rtcp:") and line.split(" ")[-1] in replaced:
            lines[i] = " ".join(line.split(" ")[:-2] + [family, str(public)])
    return "\r\n".join(lines)


def candidate_addresses(sdp: str) -> list[str]:
    """The address of every candidate and ``c=`` line in ``sdp`` (what a receiver learns)."""
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split(" ")
            if len(fields) > 4:
                found.append(fields[4])
            if "raddr" in fields:
                found.append(fields[fields.index("raddr") + 1])
        elif line.startswith("c=IN "):
            found.append(line.split(" ")[-1])
    return found


def _version(address: str) -> Optional[int]:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:  # an mDNS name
        return None
