"""The built wheel works on its own: installed without -e, run outside the repository.

`python -m build` makes the sdist and, from it, the wheel; a fresh venv gets the wheel
(and, to download nothing, the dev venv's site-packages for the dependencies through a
.pth line: .pth files inside that directory, like the editable install's finder, are
not processed, so our own code comes only from the wheel).  From an empty working
directory, with no CXT_* variable set: `cxt --help`, `cxt rules check` (the shipped
config/alert_rules.toml) and a worker on the shipped defaults that stores one interaction.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxt.localstack import LocalStack, free_port
from kernel.settings import Settings
from tests.support.helpers import REPO, create_topics, envelope, eventually, produce_events
from usecases.timeline import read_timeline


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built by `python -m build` (sdist, then wheel from it)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Built from a copy of the checkout, so stale build/ leftovers cannot slip into it.
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        "test-artifacts", ".cxt", "bench"))
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"),
                            str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (built_wheel,) = (tmp / "dist").glob("cx_timeline-*.whl")
    return built_wheel


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh venv with only the wheel of this checkout installed."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    # The dev venv's pip installs into the new venv; --ignore-installed: it must not look
    # at (or uninstall) the editable install it can see.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
                   check=True, timeout=300)
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip())
    (site / "cxt_dev_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv / "bin"


PACKAGES = ("kernel", "domain", "schemas", "store", "usecases", "streams", "consumers",
            "dashboard", "cxt", "config")


def test_the_wheel_has_every_module_and_data_file(wheel: Path) -> None:
    """Every file of our packages but caches, `config/` included (it has no __init__.py)."""
    expected = {path.relative_to(REPO).as_posix()
                for package in PACKAGES for path in (REPO / package).rglob("*")
                if path.is_file() and "__pycache__" not in path.parts
                and path.suffix != ".pyc"}
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if ".dist-info/" not in name}
    assert sorted(expected - shipped) == []
    assert sorted(shipped - expected) == []


def _env(**settings: str) -> dict[str, str]:
    """This environment without any setting of ours, PYTHONPATH or the dev venv's PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CXT_") and k not in {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL",
                                                      "PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, "PYTHONUNBUFFERED": "1", **settings}


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    return cwd


def test_our_code_comes_from_the_wheel(installed: Path, elsewhere: Path) -> None:
    code = ("import cxt, kernel.settings as s; print(cxt.__file__); print(s.CONFIG_DIR); "
            "print(s.Settings().alert_rules_path.is_file())")
    out = subprocess.run([str(installed / "python"), "-c", code], cwd=elsewhere, env=_env(),
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    venv = installed.parent.resolve()
    assert Path(out[0]).resolve().is_relative_to(venv), out
    assert Path(out[1]).resolve().is_relative_to(venv), out
    assert out[2] == "True"


def test_help_and_rules_check_run_on_the_shipped_files(installed: Path, elsewhere: Path
                                                       ) -> None:
    for args in (["--help"], ["rules", "check"]):
        result = subprocess.run([str(installed / "cxt"), *args], cwd=elsewhere, env=_env(),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
        assert "Traceback" not in result.stderr
    assert list(elsewhere.iterdir()) == [], "cxt left files in the working directory"


@pytest.fixture
def worker(installed: Path, stack: LocalStack, elsewhere: Path) -> Iterator[tuple[Settings,
                                                                                  Path]]:
    """The installed `cxt worker` on the session's Kafka and Redis, every other setting
    at its default (the metrics port aside: tests share this machine)."""
    settings = Settings(kafka_bootstrap_servers=stack.settings.kafka_bootstrap_servers,
                        redis_url=stack.settings.redis_url)
    asyncio.run(create_topics(settings))
    log = elsewhere.parent / "worker.log"
    env = _env(KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
               REDIS_URL=settings.redis_url, CXT_WORKER_METRICS_PORT=str(free_port()))
    with log.open("wb") as out:
        proc = subprocess.Popen([str(installed / "cxt"), "worker"], cwd=elsewhere, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield settings, log
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_installed_worker_stores_an_interaction(worker: tuple[Settings, Path]) -> None:
    settings, log = worker
    customer = f"C-wheel-{uuid.uuid4().hex[:8]}"
    asyncio.run(produce_events(settings, [envelope("call", customer, intent="billing")]))

    async def stored() -> list:
        return (await read_timeline(settings, customer))["events"]

    events = asyncio.run(eventually(stored, timeout=90))
    assert events, log.read_text(errors="replace")[-4000:]
    assert events[0]["payload"]["intent"] == "billing"
    # The faust side (customers, alert actions) up too; stopped mid-rebalance, a worker
    # would take its whole stop timeout.
    ready = asyncio.run(eventually(lambda: "[^Worker]: Ready" in log.read_text(errors="replace"),
                                   timeout=60))
    assert ready, log.read_text(errors="replace")[-4000:]
