"""Evidence pictures on disk: ``<data dir>/evidence/YYYY-MM-DD/<random>.jpg``, one directory per day.

The database keeps the path relative to the evidence directory; nothing outside that directory is
ever read or deleted.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

JPEG_MAGIC = b"\xff\xd8\xff"


class EvidenceFiles:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def write(self, jpeg: bytes, captured_at: float) -> str:
        """Store one picture; returns its relative path. Written to a temporary name, then renamed."""
        day = datetime.fromtimestamp(captured_at, tz=UTC).strftime("%Y-%m-%d")
        directory = self.root / day
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_hex(12)}.jpg"
        tmp = directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(jpeg)
        os.replace(tmp, directory / name)
        return f"{day}/{name}"

    def resolve(self, relative: str) -> Path | None:
        """The file's absolute path, ``None`` if ``relative`` would leave the evidence directory."""
        path = (self.root / relative).resolve()
        if path == self.root or self.root not in path.parents:
            return None
        return path

    def read(self, relative: str) -> bytes | None:
        path = self.resolve(relative)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, relative: str) -> bool:
        path = self.resolve(relative)
        if path is None:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        self._remove_if_empty(path.parent)
        return True

    def delete_orphans(self, cutoff: float, keep: Collection[str]) -> int:
        """Delete files last modified before ``cutoff`` (epoch seconds) that no row refers to (``keep``):
        pictures written by a report that failed to be stored, or rows deleted by hand."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for directory in sorted(self.root.iterdir()):
            if not directory.is_dir() or directory.is_symlink():
                continue
            for path in directory.iterdir():
                try:
                    relative = f"{directory.name}/{path.name}"
                    if relative in keep or not path.is_file() or path.is_symlink():
                        continue
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
            self._remove_if_empty(directory)
        return removed

    def _remove_if_empty(self, directory: Path) -> None:
        if directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                pass

