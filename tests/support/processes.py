"""The cxt commands as child processes of the tests: `run_cxt` to completion, `CxtProcess`
and its subclasses serving until stopped, each logging to a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from kernel.settings import Settings
from tests.support.helpers import REPO, settings_env


def run_cxt(settings: Settings, *args: str, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
    """`python -m cxt ARGS` against `settings`, to completion, output captured."""
    return subprocess.run([sys.executable, "-m", "cxt", *args], cwd=REPO,
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=timeout)


class CxtProcess:
    """`python -m cxt COMMAND` as a child process, with its output in a log file."""

    command: tuple[str, ...] = ()

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_path = log_dir / f"{self.command[0]}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CxtProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cxt", *self.command], cwd=REPO,
                env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        return self

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def assert_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, (
            f"{self.command[0]} exited with {self.proc and self.proc.returncode}:\n{self.log()}")


class WorkerProcess(CxtProcess):
    command = ("worker",)


class DashboardProcess(CxtProcess):
    """`cxt dashboard` on `settings.dashboard_port`; `wait_ready` once started."""

    command = ("dashboard",)

    def wait_ready(self, token: str, timeout: float = 60) -> None:
        """Until /healthz says Kafka, Redis and the live feed are all up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_alive()
            request = urllib.request.Request(f"{self.settings.dashboard_url}/healthz",
                                             headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"the dashboard was not ready within {timeout} s:\n{self.log()}")


class SummaryProcess(CxtProcess):
    command = ("summaries",)


class WebhooksProcess(CxtProcess):
    command = ("webhooks", "run")
