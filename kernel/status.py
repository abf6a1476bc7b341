"""Periodic progress: a status line for long work (sending files, benchmarks, replays),
and the throughput of the long-running services' periodic status log lines."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class StatusLine:
    """A periodic progress line on stderr.

    On a terminal it rewrites one line in place a few times a second; when
    stderr is a file or pipe it prints a new line every `every` seconds, so logs
    stay readable.
    """

    def __init__(self, every: float = 5.0, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.every = 0.25 if self.tty else every
        self._last = 0.0
        self._dirty = False

    def update(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        if self.tty:
            self.stream.write(f"\r\x1b[2K{text}")
            self._dirty = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self, text: str | None = None) -> None:
        if not self.enabled:
            return
        if text is not None:
            self.update(text, force=True)
        if self._dirty:
            self.stream.write("\n")
            self.stream.flush()
            self._dirty = False


# How often the worker and the summary feed log their status line.
STATUS_EVERY_S = 10.0


class Throughput:
    """Records per second between two status lines of a long-running service.

    The worker logs one from a faust timer, the summary feed between batches
    (`due`); both take the rate here, from their running count of records in.
    """

    def __init__(self, every: float = STATUS_EVERY_S) -> None:
        self.every = every
        self._last = (time.monotonic(), 0)

    def due(self) -> bool:
        return time.monotonic() - self._last[0] >= self.every

    def rate(self, total: int) -> float:
        """Records per second since the last call (or since it was made); `total` so far."""
        then, seen = self._last
        now = time.monotonic()
        self._last = (now, total)
        return (total - seen) / max(now - then, 1e-9)
