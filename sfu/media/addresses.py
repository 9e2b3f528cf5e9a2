"""Addresses the server announces in its SDP: every rewrite of SDP address lines lives here.

Behind 1:1 NAT (a cloud VM with a private interface address and a public one mapped onto it), the
server's host candidates carry the private address, which nobody outside can reach. :func:`announce`
puts the public address in their place, and in the ``c=`` lines that repeat it. The sockets stay bound
to the private address; the NAT maps the public one onto it in both directions.
"""

from __future__ import annotations

import ipaddress
from typing import Optional


def check_public_ip(public_ip: str) -> None:
    """``ValueError`` unless ``public_ip`` is a literal IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(public_ip)
    except ValueError:
        raise ValueError(f"public IP {public_ip!r} is not an IP address") from None


def announce(sdp: str, public_ip: Optional[str]) -> str:
    """``sdp`` with ``public_ip`` in place of the address of every host candidate of its family.

    The same address is also replaced where it reappears: ``c=`` and ``a=rtcp:`` lines, and the
    related address (``raddr``) of server-reflexive and relayed candidates.
    """
    if not public_ip:
        return sdp
    public = str(ipaddress.ip_address(public_ip))
    version = ipaddress.ip_address(public_ip).version
    lines = sdp.split("\r\n")
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
    private = {
        fields[4]
        for fields in (line.split(" ") for line in lines if line.startswith("a=candidate:"))
        if len(fields) >= 8 and fields[6] == "typ" and fields[7] == "host" and _version(fields[4]) == version
    }
    if not private:
        return sdp
    family = "IP4" if version == 4 else "IP6"
    for i, line in enumerate(lines):
        fields = line.split(" ")
        if line.startswith("a=candidate:") and len(fields) >= 8:
            if fields[7] == "host" and fields[4] in private:
                fields[4] = public
            if "raddr" in fields and fields[fields.index("raddr") + 1] in private:
                fields[fields.index("raddr") + 1] = public
            lines[i] = " ".join(fields)
        elif line.startswith("c=IN ") and fields[-1] in private:
            lines[i] = f"c=IN {family} {public}"
        elif line.startswith("a=rtcp:") and fields[-1] in private:
            lines[i] = " ".join(fields[:-2] + [family, public])
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
