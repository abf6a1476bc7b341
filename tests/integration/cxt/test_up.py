"""`cxt up`: the whole local product starts, works, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cxt.localstack import free_port, port_in_use
from kernel.settings import Settings
from tests.support.helpers import REPO, envelope, eventually, produce_events, read_topic
from usecases.timeline import read_timeline


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)


def _http_status(url: str, token: str | None = None, timeout: float = 60) -> int:
    """The status of a GET, retried while the service is still starting."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=5) as reply:
                return reply.status
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                return exc.code
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_up_runs_the_product_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    kafka_port, redis_port, web_port, metrics_port = (free_port() for _ in range(4))
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{kafka_port}",
           "REDIS_URL": f"redis://localhost:{redis_port}/0",
           "CXT_DASHBOARD_PORT": str(web_port), "CXT_WORKER_METRICS_PORT": str(metrics_port),
           "CXT_STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    for name in ("CXT_API_TOKENS", "CXT_API_TOKENS_FILE"):
        env.pop(name, None)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "cxt", "up", "--rate", "20"], cwd=REPO,
                              env=env, stdout=out, stderr=subprocess.STDOUT)
    children: list[int] = []
    try:
        _wait_for_line(log, "cx-timeline is running", up, timeout=120)
        children = _children(up.pid)
        assert len(children) >= 4  # worker, summaries, dashboard and demo traffic

        # The banner's advisory URL carries a working development token.
        found = re.search(rf"(http://127.0.0.1:{web_port}/advisory)#token=(\S+)",
                          log.read_text())
        assert found, log.read_text()[-3000:]
        page_url, token = found.groups()
        assert _http_status(page_url) == 200
        assert _http_status(f"http://127.0.0.1:{web_port}/healthz", token) == 200
        assert _http_status(f"http://127.0.0.1:{web_port}/api/alerts") == 401
        assert _http_status(f"http://127.0.0.1:{metrics_port}/metrics") == 200
        assert oct((tmp_path / "state" / "api-tokens").stat().st_mode)[-3:] == "600"

        settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
                            redis_url=f"redis://127.0.0.1:{redis_port}/0")
        mine = envelope("call", "C-up-test", intent="billing")
        asyncio.run(produce_events(settings, [mine]))

        async def stored() -> list:
            return (await read_timeline(settings, "C-up-test"))["events"]

        assert asyncio.run(eventually(stored, timeout=60)), log.read_text()[-3000:]
        summaries = asyncio.run(read_topic(
            settings, settings.topics.customer_summary, timeout=60,
            until=lambda ms: any(m.key == b"C-up-test" for m in ms)))
        assert any(m.key == b"C-up-test" for m in summaries), log.read_text()[-3000:]
        _wait_for_line(log, "simulate:", up, timeout=30)  # the demo traffic is flowing

        # Ctrl-C, twice, as an impatient person (or a process manager) would.
        up.send_signal(signal.SIGINT)
        time.sleep(0.3)
        up.send_signal(signal.SIGINT)
        assert up.wait(90) == 0
        assert "stopped: no process left running" in log.read_text()
        for pid in children:
            assert not os.path.exists(f"/proc/{pid}"), f"child {pid} left behind"
        assert not port_in_use("127.0.0.1", kafka_port)
        assert not port_in_use("127.0.0.1", redis_port)
        assert not port_in_use("127.0.0.1", web_port)
    finally:
        _kill_all(up, children)


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody reaped yet (its ports are closed)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _up_no_demo(tmp_path: Path, **popen: Any) -> tuple[subprocess.Popen, Path, list[int]]:
    """`cxt up --no-demo` on free ports: the process, its log, and its ports."""
    ports = [free_port() for _ in range(3)]
    kafka_port, redis_port, web_port = ports
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{kafka_port}",
           "REDIS_URL": f"redis://localhost:{redis_port}/0",
           "CXT_DASHBOARD_PORT": str(web_port), "CXT_WORKER_METRICS_PORT": "0",
           "CXT_STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    for name in ("CXT_API_TOKENS", "CXT_API_TOKENS_FILE"):
        env.pop(name, None)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "cxt", "up", "--no-demo"], cwd=REPO,
                              env=env, stdout=out, stderr=subprocess.STDOUT, **popen)
    return up, log, ports


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_up_started_with_sigint_ignored_still_stops_its_children_quickly(
        tmp_path: Path) -> None:
    """A shell's `cmd &` (or a supervisor) starts `cxt up` with SIGINT ignored, which its
    children would inherit; they are stopped with SIGINT, so they must not ignore it
    (before: each waited out its 15 s stop timeout, then was killed)."""
    up, log, _ = _up_no_demo(tmp_path, preexec_fn=_ignore_sigint)
    children: list[int] = []
    try:
        _wait_for_line(log, "cx-timeline is running", up, timeout=120)
        children = _children(up.pid)
        started = time.monotonic()
        up.send_signal(signal.SIGTERM)
        up.wait(60)
        took = time.monotonic() - started
        assert took < 14, f"cxt up took {took:.1f} s to stop"
        assert all(_gone(pid) for pid in children)
    finally:
        _kill_all(up, children)


def test_a_sigkilled_up_takes_its_children_along(tmp_path: Path) -> None:
    """An OOM kill or a closed terminal's hard kill gives `cxt up` no chance to stop its
    children; the kernel must (PR_SET_PDEATHSIG), or they hold the ports of the next run."""
    up, log, (kafka_port, redis_port, web_port) = _up_no_demo(tmp_path)
    children: list[int] = []
    try:
        _wait_for_line(log, "cx-timeline is running", up, timeout=120)
        children = _children(up.pid)
        # broker, Redis, worker, summaries, dashboard
        assert len(children) >= 5, children
        up.kill()
        up.wait()
        deadline = time.monotonic() + 30
        while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [pid for pid in children if not _gone(pid)]
        assert not left, f"still running after cxt up was killed: {left}"
        for port in (kafka_port, redis_port, web_port):
            assert not port_in_use("127.0.0.1", port), port
    finally:
        _kill_all(up, children)


def _kill_all(up: subprocess.Popen, children: list[int]) -> None:
    """Whatever a failed test left running: `cxt up` and each child's session."""
    if up.poll() is None:
        up.kill()
        up.wait()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # each runs in its own session


def test_children_run_on_the_local_stack_settings_and_keep_their_token_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`cxt up`'s children get every setting of the running stack (Settings.to_env), but
    API tokens stay where the user put them: a token file is inherited, not inlined."""
    from cxt.up import _child_env

    tokens = tmp_path / "tokens"
    tokens.write_text(f"service:crm:{'s' * 20}\n")
    monkeypatch.setenv("CXT_API_TOKENS_FILE", str(tokens))
    monkeypatch.setenv("CXT_BATCH_SIZE", "17")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:1")
    live = Settings.from_env().with_(kafka_bootstrap_servers="127.0.0.1:39092",
                                     redis_url="redis://127.0.0.1:36379/0")
    env = _child_env(live, {"CXT_DASHBOARD_PORT": "8123"})
    assert env["CXT_API_TOKENS_FILE"] == str(tokens)
    assert "s" * 20 not in env.get("CXT_API_TOKENS", "")
    assert env["PYTHONUNBUFFERED"] == "1"
    assert Settings.from_env(env) == live.with_(dashboard_port=8123)
