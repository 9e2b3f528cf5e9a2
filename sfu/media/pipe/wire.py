"""The pipe's datagram format: encrypted and authenticated with AES-GCM, replays refused.

Every datagram is::

    version (1 byte) | type (1 byte) | nonce (12 bytes) | AES-GCM ciphertext of the body + 16-byte tag

sealed with the *receiver's* key, the first 14 bytes as associated data (so the type cannot be
changed either). The nonce is the sender's random 6-byte prefix followed by a 48-bit counter: unique
per datagram for as long as the process lives, without coordination between senders. The receiver
keeps a sliding window per sender prefix (:class:`ReplayWindow`) and drops a datagram whose counter
it has already accepted or that is too old, so a captured datagram cannot be played again.

Pure logic (no sockets): :class:`Sealer` makes datagrams, :class:`Opener` checks and opens them.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 0xE1
KEY_SIZE = 32
PREFIX_SIZE = 6
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = 2 + NONCE_SIZE
#: The smallest datagram that can be genuine: a header, an empty body and the tag.
MIN_SIZE = HEADER_SIZE + TAG_SIZE
#: Counters this far behind the newest one accepted from a sender are refused as too old.
REPLAY_WINDOW = 1024
#: Senders (nonce prefixes) remembered by one receiver; the oldest is forgotten beyond.
MAX_SENDERS = 1024

_COUNTER_LIMIT = 1 << 48
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1


class Kind(IntEnum):
    """What a datagram carries."""

    MEDIA = 1  #: a stream tag and one RTP packet (exporter -> importer)
    DESCRIBE = 2  #: a publisher's streams: codecs, extension ids, hidden (exporter -> importer)
    FEEDBACK = 3  #: keyframe request, bitrate cap, NACK, attach/detach (importer -> exporter)


class Refused(Exception):
    """A datagram that is not accepted; ``reason`` is the counter it is counted under."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_key() -> bytes:
    """A random receive key for one process."""
    return os.urandom(KEY_SIZE)


def check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise ValueError(f"a pipe key is {KEY_SIZE} bytes")
    return key


class Sealer:
    """Makes datagrams for receivers, each with its own key (one cipher object kept per key)."""

    def __init__(self, prefix: bytes | None = None) -> None:
        self.prefix = os.urandom(PREFIX_SIZE) if prefix is None else prefix
        if len(self.prefix) != PREFIX_SIZE:
            raise ValueError(f"a nonce prefix is {PREFIX_SIZE} bytes")
        self._counter = 0
        self._ciphers: dict[bytes, AESGCM] = {}

    def cipher(self, key: bytes) -> AESGCM:
        cipher = self._ciphers.get(key)
        if cipher is None:
            cipher = self._ciphers[key] = AESGCM(check_key(key))
        return cipher

    def forget(self, key: bytes) -> None:
        self._ciphers.pop(key, None)

    def seal(self, key: bytes, kind: Kind, body: bytes) -> bytes:
        """A datagram carrying ``body`` that only the holder of ``key`` can open."""
        self._counter += 1
        if self._counter >= _COUNTER_LIMIT:  # 2**48 datagrams: start a fresh nonce space
            self.prefix, self._counter = os.urandom(PREFIX_SIZE), 1
        header = struct.pack("!BB", VERSION, kind) + self.prefix + self._counter.to_bytes(6, "big")
        return header + self.cipher(key).encrypt(header[2:], body, header)


_KIND_OF = {k.value: k for k in Kind}


@dataclass(frozen=True, slots=True)
class Opened:
    kind: Kind
    sender: bytes  #: the sender's nonce prefix (one per sending process)
    counter: int  #: the datagram's number from that sender (larger: sent later)
    body: bytes


class ReplayWindow:
    """Which counters of one sender were accepted: the newest and a bit mask of those before it."""

    def __init__(self) -> None:
        self.highest = 0
        self._mask = 0  #: bit i set: counter ``highest - i`` accepted

    def fresh(self, counter: int) -> bool:
        if counter > self.highest:
            return True
        behind = self.highest - counter
        return behind < REPLAY_WINDOW and not (self._mask >> behind) & 1

    def accept(self, counter: int) -> None:
        if counter > self.highest:
            shift = counter - self.highest
            self._mask = ((self._mask << shift) | 1) & _WINDOW_MASK if shift < REPLAY_WINDOW else 1
            self.highest = counter
        else:
            self._mask |= 1 << (self.highest - counter)


class Opener:
    """Checks and opens datagrams sealed with this process's key."""

    def __init__(self, key: bytes) -> None:
        self._cipher = AESGCM(check_key(key))
        self._windows: OrderedDict[bytes, ReplayWindow] = OrderedDict()

    def open(self, data: bytes) -> Opened:
        """The datagram's content; :class:`Refused` if malformed, forged, tampered with or replayed."""
        if len(data) < MIN_SIZE:
            raise Refused("truncated")
        if data[0] != VERSION:
            raise Refused("malformed")
        kind = _KIND_OF.get(data[1])
        if kind is None:
            raise Refused("malformed")
        sender = data[2 : 2 + PREFIX_SIZE]
        counter = int.from_bytes(data[2 + PREFIX_SIZE : HEADER_SIZE], "big")
        window = self._windows.get(sender)
        if window is not None and not window.fresh(counter):
            raise Refused("replayed")
        try:
            body = self._cipher.decrypt(data[2:HEADER_SIZE], data[HEADER_SIZE:], data[:HEADER_SIZE])
        except InvalidTag:
            raise Refused("unauthenticated") from None
        if window is None:  # only an authentic datagram may make room for a new sender
            window = self._windows[sender] = ReplayWindow()
            if len(self._windows) > MAX_SENDERS:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(sender)
        window.accept(counter)
        return Opened(kind, sender, counter, body)
