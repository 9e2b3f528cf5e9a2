"""Names in the shared pool: key prefix, process ids, participant ids.

Everything lives under one prefix (``sfu:`` by default), so several deployments, or tests, can share
one Redis. The layout of the keys is described in :mod:`.lua_pool` and :mod:`.lua_ops`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

#: Separators inside one Redis value (unit, record, group); normalised interests and ids never
#: contain control characters.
SEP = "\x1f"
RECORD = "\x1e"
GROUP = "\x1d"
MAX_ID_LENGTH = 200


def check_name(kind: str, value: object) -> str:
    """``value`` if it can name a participant or a process part, else ValueError."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise ValueError(f"a {kind} is a string of 1 to {MAX_ID_LENGTH} characters, not {value!r:.60}")
    if any(c < " " for c in value):
        raise ValueError(f"a {kind} has no control characters: {value!r:.60}")
    return value


@dataclass(frozen=True)
class ProcessId:
    """One serving process: the node (machine) and worker it is, and this run of it.

    The incarnation tells a restarted worker from the one that died: the dead one's participants
    and inbox are swept, never inherited.
    """

    node: str
    worker: str
    incarnation: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        for kind, value in (("node id", self.node), ("worker id", self.worker), ("incarnation", self.incarnation)):
            check_name(kind, value)
            if "/" in value:
                raise ValueError(f"a {kind} has no '/': {value!r:.60}")

    def __str__(self) -> str:
        return f"{self.node}/{self.worker}/{self.incarnation}"

    @classmethod
    def parse(cls, text: str) -> ProcessId:
        node, worker, incarnation = text.split("/")
        return cls(node, worker, incarnation)


@dataclass(frozen=True)
class Keys:
    prefix: str = "sfu:"

    def __post_init__(self) -> None:
        check_name("key prefix", self.prefix)

    def participant(self, who: str) -> str:
        return f"{self.prefix}p:{who}"

    def inbox(self, process: ProcessId | str) -> str:
        return f"{self.prefix}inbox:{process}"

    def process(self, process: ProcessId | str) -> str:
        return f"{self.prefix}proc:{process}"

    def owned(self, process: ProcessId | str) -> str:
        return f"{self.prefix}owned:{process}"

    @property
    def waiting(self) -> str:
        return f"{self.prefix}waiting"

    @property
    def paired(self) -> str:
        return f"{self.prefix}paired"

    @property
    def processes(self) -> str:
        return f"{self.prefix}procs"

    @property
    def stats(self) -> str:
        return f"{self.prefix}stats"
