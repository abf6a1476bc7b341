"""`cxt up`: the whole product on this machine, stopped cleanly by Ctrl-C.

Broker and Redis run under CXT_STATE_DIR (kept between runs, so timelines
survive a restart); the worker, the summary feed, the dashboard and the demo
traffic run as child processes in their own sessions, so Ctrl-C reaches only
this process and everything is
stopped in order: traffic, dashboard, summaries, worker, Redis, broker.  If
this process is killed outright (SIGKILL, the OOM killer) the kernel sends
each child SIGTERM (`die_with_parent`), so none is left holding its port.  Without
configured API tokens it makes development ones (CXT_STATE_DIR/api-tokens)
and prints the pages' URLs with them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast
from urllib.parse import urlparse

from cxt.localstack import LocalStack, die_with_parent, port_in_use
from cxt.tokens import DEV_ADVISOR, DEV_AGENT, DEV_CUSTOMER, dev_tokens, token_of
from kernel.errors import CxtError
from kernel.settings import Settings
from kernel.topics import ensure_topics

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class UpError(CxtError):
    pass


def _local_port(what: str, host: str | None, port: int | None, variable: str) -> int:
    if host not in LOCAL_HOSTS or port is None:
        raise UpError(f"cxt up starts a local {what}, but {variable} points at {host}:{port}; "
                      f"set it to localhost:PORT, or run `cxt worker` against that server")
    if port_in_use("127.0.0.1", port):
        raise UpError(f"port {port} for the local {what} is already in use; stop what uses it "
                      f"or choose another port with {variable}")
    return port


def local_ports(settings: Settings) -> tuple[int, int]:
    first = settings.kafka_bootstrap_servers.split(",")[0].strip()
    kafka = urlparse(f"//{first}")
    redis = urlparse(settings.redis_url)
    return (
        _local_port("Kafka broker", kafka.hostname, kafka.port, "KAFKA_BOOTSTRAP_SERVERS"),
        _local_port("Redis", redis.hostname, redis.port or 6379, "REDIS_URL"),
    )


def _child_env(settings: Settings, extra: dict[str, str]) -> dict[str, str]:
    """The children run on `settings` (the local stack's broker and Redis); API tokens stay
    where the user put them (CXT_API_TOKENS / CXT_API_TOKENS_FILE, inherited) or in `extra`."""
    return {**os.environ, **settings.to_env(omit={"api_tokens", "api_tokens_file"}),
            "PYTHONUNBUFFERED": "1",
            **extra}


def _spawn(args: list[str], settings: Settings, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cxt", *args],
                            env=_child_env(settings, extra), start_new_session=True,
                            preexec_fn=_child_preexec(die_with_parent()))


def _child_preexec(then: Callable[[], None] | None) -> Callable[[], None]:
    """Children stop on SIGINT (`_stop`), even when `cxt up` itself was started with
    SIGINT ignored (a shell's `&`, some supervisors), which children would inherit;
    `then` (die_with_parent): a SIGKILLed `cxt up` takes them along."""
    def preexec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if then is not None:
            then()
    return preexec


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _dashboard_urls(settings: Settings, tokens_file: Path | None) -> str:
    url = settings.dashboard_url
    if tokens_file is None:
        return f"""
Dashboard (with the tokens of CXT_API_TOKENS / CXT_API_TOKENS_FILE):
  {url}/advisory#token=TOKEN, {url}/agent?agent=AGENT_ID#token=TOKEN and
  {url}/me#token=TOKEN (a customer token: `cxt tokens new customer CUSTOMER_ID`)
"""
    tokens = settings.api_tokens
    advisor = token_of(tokens, "advisor", DEV_ADVISOR)
    agent = token_of(tokens, "agent", DEV_AGENT)
    service = token_of(tokens, "service", "dev-service")
    customer = token_of(tokens, "customer", DEV_CUSTOMER)
    return f"""
Open in a browser (development tokens; every demo agent's is in {tokens_file}):
  advisory group     {url}/advisory#token={advisor}
  agent {DEV_AGENT}        {url}/agent?agent={DEV_AGENT}#token={agent}
  customer {DEV_CUSTOMER}  {url}/me#token={customer}
  JSON API           curl -H 'Authorization: Bearer {service}' {url}/api/alerts
"""


def _banner(settings: Settings, rate: float | None, tokens_file: Path | None) -> str:
    demo = f"demo traffic at {rate:g} events/s" if rate else "no demo traffic"
    return f"""
cx-timeline is running
  Kafka broker   {settings.kafka_bootstrap_servers}  (data in {settings.state_dir}/kafka)
  Redis          {settings.redis_url}
  stream worker  consuming {', '.join(settings.topics.inbound.values())}
                 metrics http://127.0.0.1:{settings.worker_metrics_port}/metrics
  summaries      customer summaries for the CRM on {settings.topics.customer_summary}
  dashboard      {settings.dashboard_url}  (API, pages, websockets; /metrics with a token)
  {demo}
{_dashboard_urls(settings, tokens_file)}
Look at it (in another terminal):
  ./dev cxt timeline C-000001              a customer's timeline, newest first
  ./dev cxt timeline C-000001 --json       the same as JSON
  ./dev cxt alerts --status open           bottom-2-box alerts waiting for a call-back
  ./dev cxt alerts show ALERT_ID           one alert: survey, category, recent interactions
  ./dev cxt report --hours 24              survey responses hour by hour
  ./dev cxt topics list                    topics and partitions
Press Ctrl-C to stop everything.
"""


def run_up(settings: Settings, *, rate: float, customers: int, demo: bool) -> int:
    try:
        kafka_port, redis_port = local_ports(settings)
        if port_in_use("127.0.0.1", settings.dashboard_port):
            raise UpError(f"port {settings.dashboard_port} for the dashboard is already in use; "
                          "stop what uses it or choose another with CXT_DASHBOARD_PORT")
    except UpError as exc:
        print(f"cxt up: {exc}", file=sys.stderr)
        return 1
    stack = LocalStack(settings, settings.state_dir, kafka_port=kafka_port,
                       redis_port=redis_port, redis_appendonly=True)
    children: list[subprocess.Popen[bytes]] = []
    # SIGTERM (e.g. from a process manager) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        print(f"starting Apache Kafka {settings.kafka_version} and Redis ...", flush=True)
        tokens_file = None
        if not settings.api_tokens and settings.api_tokens_file is None:
            tokens_file = settings.state_dir / "api-tokens"
            settings = settings.with_(api_tokens=dev_tokens(tokens_file))
        live = stack.start()
        asyncio.run(ensure_topics(live))
        children.append(_spawn(["worker"], live))
        children.append(_spawn(["summaries"], live))
        extra = {"CXT_API_TOKENS_FILE": str(tokens_file.resolve())} if tokens_file else {}
        children.append(_spawn(["dashboard"], live, **extra))
        if demo:
            children.append(_spawn(["simulate", "--rate", f"{rate:g}", "--duration", "0",
                                    "--customers", str(customers)], live))
        print(_banner(live.with_(api_tokens=settings.api_tokens), rate if demo else None,
                      tokens_file), flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = next(c for c in children if c.poll() is not None)
        command = cast(list[str], failed.args)  # the list _spawn passed to Popen
        print(f"cxt up: {' '.join(command[3:4])} exited with status {failed.returncode}; "
              "stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        # A second Ctrl-C (or a supervisor signalling the whole group) must not cut
        # the orderly stop short and leave the worker behind; every step is bounded.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            _stop(child)
        stack.stop()
        print("stopped: no process left running", flush=True)
