"""How one process names another's pipe: the address to send to and the key to seal with."""

from __future__ import annotations

from dataclasses import dataclass

from .wire import check_key


@dataclass(frozen=True)
class PipePeer:
    """A process's pipe: where its UDP socket listens and its receive key (32 bytes)."""

    address: tuple[str, int]
    key: bytes

    def __post_init__(self) -> None:
        check_key(self.key)
        host, port = self.address
        if not isinstance(host, str) or not host or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"bad pipe address {self.address!r}")

    def encode(self) -> str:
        """One line to publish (e.g. in Redis): ``KEYHEX@HOST:PORT`` (IPv6 hosts in brackets)."""
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"{self.key.hex()}@{shown}:{port}"

    @classmethod
    def decode(cls, text: str) -> PipePeer:
        """The peer :meth:`encode` wrote; :class:`ValueError` if ``text`` is not one."""
        key_hex, at, where = text.partition("@")
        host, colon, port = where.rpartition(":")
        if not at or not colon or not port.isdigit():
            raise ValueError(f"not a pipe peer: {text!r}")
        try:
            key = bytes.fromhex(key_hex)
        except ValueError:
            raise ValueError("a pipe key is hexadecimal") from None
        return cls((host.strip("[]"), int(port)), key)

    def __repr__(self) -> str:  # never print the key
        return f"PipePeer({self.address[0]}:{self.address[1]})"
