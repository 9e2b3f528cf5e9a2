"""Closing steps that run in the background (a socket closed after its media failed, or after a
timeout): every one has an owner, which awaits what is left when the server stops.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable


class ClosingTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, step: Awaitable[Any]) -> None:
        """Run ``step`` in the background; it is forgotten once done."""
        task = asyncio.ensure_future(step)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        """Cancel what is still running and wait for it to finish."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
