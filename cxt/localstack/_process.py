"""Child-process plumbing shared by the Kafka and Redis wrappers."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

# Children still running when the interpreter exits normally.  Without this a
# test run that forgets stop() (or dies on an exception) leaves a JVM behind.
_live: set[subprocess.Popen[bytes]] = set()


def spawn(argv: Sequence[str], *, cwd: Path, output: Path) -> subprocess.Popen[bytes]:
    """Start argv in its own process group, stdout+stderr appended to output.

    Its own group keeps Ctrl-C in the terminal away from it, so the owner can
    shut it down in order instead of racing the signal.
    """
    with output.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, process_group=0,
        )
    _live.add(proc)
    return proc


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group may already be gone (the process exited on its own).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, wait up to timeout, then SIGKILL.  Safe to call twice."""
    if proc is None:
        return
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    _live.discard(proc)


def kill(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL without any chance to clean up (for fault-injection tests)."""
    if proc is None:
        return
    if proc.poll() is None:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    _live.discard(proc)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@atexit.register
def _reap_leftovers() -> None:
    for proc in list(_live):
        terminate(proc, timeout=10)
