"""A periodic progress line, for long work (sending files, benchmarks, replays)."""

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
