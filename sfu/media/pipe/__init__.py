"""Media piped between processes: RTP of a publisher served here, sent to the process serving its
watcher, and feedback sent back (see :mod:`.pipe`)."""

from .peer import PipePeer
from .pipe import MediaPipe

__all__ = ["MediaPipe", "PipePeer"]
