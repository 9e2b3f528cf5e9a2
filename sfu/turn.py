"""ICE servers handed to each client, with TURN credentials minted per client from a shared secret.

coturn's ``use-auth-secret`` scheme (the "TURN REST API"): the username is
``"<expiry unix time>:<random id>"`` and the password is ``base64(HMAC-SHA1(secret, username))``.
coturn recomputes the HMAC with the same secret and refuses the request when it differs or when the
expiry has passed, so no static password ever appears in the page, and a leaked credential stops
working by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Optional

from .config import Config, IceServer
from .config.validation import turn_problems


@dataclass(frozen=True)
class TurnCredentials:
    username: str
    credential: str
    #: Unix time after which coturn refuses them.
    expires: int


def rest_credentials(
    secret: str, ttl: float, *, now: Optional[float] = None, user: Optional[str] = None
) -> TurnCredentials:
    """Time-limited TURN credentials for ``secret`` (coturn ``static-auth-secret``)."""
    expires = int((time.time() if now is None else now) + ttl)
    username = f"{expires}:{user or secrets.token_hex(8)}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"), expires)


@dataclass
class IceServerIssuer:
    """Decides the ``iceServers`` of each ``welcome``: the fixed servers plus fresh TURN credentials."""

    fixed: list[IceServer] = field(default_factory=list)
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: Optional[str] = None
    turn_ttl: float = 86400.0

    def __post_init__(self) -> None:
        problems = turn_problems(self.turn_urls, self.turn_secret, self.turn_ttl)
        if problems:
            raise ValueError(problems[0])

    @classmethod
    def from_config(cls, config: Config) -> "IceServerIssuer":
        return cls(
            fixed=list(config.ice_servers),
            turn_urls=list(config.turn_urls),
            turn_secret=config.turn_secret_value(),
            turn_ttl=config.turn_ttl,
        )

    def for_client(self, now: Optional[float] = None) -> list[IceServer]:
        """The ICE servers for one new client; TURN credentials are new on every call."""
        servers = list(self.fixed)
        if self.turn_secret and self.turn_urls:
            creds = rest_credentials(self.turn_secret, self.turn_ttl, now=now)
            servers += [IceServer(urls=url, username=creds.username, credential=creds.credential) for url in self.turn_urls]
        return servers

