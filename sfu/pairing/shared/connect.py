"""A Redis client for the shared pool: checked at once, failing fast and retrying safely."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .protocol import PairingUnavailable


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def connect(url: str, *, name: str | None = None, timeout: float = 3.0, connections: int = 16) -> Redis:
    """A client for ``url`` that answered PING, or :class:`PairingUnavailable` in one line.

    A command whose connection fails is retried twice within ~0.3 s (every pairing script is
    idempotent, see :mod:`.lua_ops`), then fails: while Redis is away calls fail fast and clearly.
    At most ``connections`` connections are open (the inbox reader holds one); more calls at once
    wait for a free one rather than opening hundreds in a burst.
    """
    try:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=connections,
            timeout=timeout + 2.0,
            socket_connect_timeout=timeout,
            socket_timeout=timeout + 2.0,  # above the inbox's blocking read
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
            client_name=name,
        )
    except ValueError as error:
        raise ValueError(f"bad Redis URL {redact(url)}: {error}") from None
    client = Redis.from_pool(pool)  # closing the client closes its pool
    try:
        await client.ping()
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        await client.aclose()
        raise PairingUnavailable(f"cannot reach Redis at {redact(url)}: {error}") from None
    except RedisError as error:
        await client.aclose()
        raise PairingUnavailable(f"Redis at {redact(url)} refused the connection: {error}") from None
    return client
