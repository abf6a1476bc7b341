"""Child-process plumbing shared by the Kafka and Redis wrappers."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Children still running when the interpreter exits normally.  Without this a
# test run that forgets stop() (or dies on an exception) leaves a JVM behind.
_live: set[subprocess.Popen[bytes]] = set()


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGTERM when this process dies, however
    it dies (SIGKILL, the OOM killer), so no orphan keeps holding its ports.

    Linux's PR_SET_PDEATHSIG, chosen over a watchdog on a pipe because it needs no
    cooperation from the child: it works for the JVM and redis-server too, survives
    exec, and costs nothing while the parent lives.  The signal follows the thread
    that forked, so it is only set from the main thread (which lives as long as the
    process); elsewhere, and off Linux, None: the children outlive a hard kill.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not \
            threading.main_thread():
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


def spawn(argv: Sequence[str], *, cwd: Path, output: Path) -> subprocess.Popen[bytes]:
    """Start argv in its own process group, stdout+stderr appended to output; it
    ends when this process dies (`die_with_parent`).

    Its own group keeps Ctrl-C in the terminal away from it, so the owner can
    shut it down in order instead of racing the signal.
    """
    with output.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, process_group=0, preexec_fn=die_with_parent(),
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
