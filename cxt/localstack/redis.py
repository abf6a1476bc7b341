"""A private redis-server on 127.0.0.1 for `cxt up`, the tests and the benchmark."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import redis as redis_py

from cxt.localstack import _process
from cxt.localstack.errors import PrerequisiteError, ServiceStartError
from cxt.localstack.ports import port_in_use


def ensure_redis_server() -> str:
    """Path of the redis-server binary, or PrerequisiteError saying how to get it."""
    path = shutil.which("redis-server")
    if path is None:
        raise PrerequisiteError("redis-server not found: apt-get install redis-server")
    return path


class RedisServer:
    """redis-server in the foreground, its data and log kept in data_dir.

    `config`: more lines of redis.conf (e.g. `tls-port`, `user`); the plain `port` stays
    for the readiness probe, which takes a refusal (NOAUTH) as an answer too.
    """

    def __init__(self, port: int, data_dir: Path, appendonly: bool = False,
                 config: Sequence[str] = ()) -> None:
        self.port = port
        self.data_dir = Path(data_dir)
        self.appendonly = appendonly
        self.config = tuple(config)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _argv(self) -> list[str]:
        conf = self.data_dir / "redis.conf"
        conf.write_text("".join(f"{line}\n" for line in self.config))
        return [
            ensure_redis_server(), str(conf),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            # No RDB snapshots: they fork the whole dataset on a 2-core box.
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]

    def start(self, timeout: float = 15) -> RedisServer:
        """Start the server and return once it answers PING."""
        if self.running:
            return self
        if port_in_use("127.0.0.1", self.port):
            raise ServiceStartError(f"cannot start Redis: port {self.port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._proc = _process.spawn(self._argv(), cwd=self.data_dir,
                                    output=self.data_dir / "redis.out")
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop(timeout=5)
            raise
        return self

    def _answers_ping(self) -> bool:
        client = redis_py.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5,
                                socket_timeout=1)
        try:
            return bool(client.ping())
        except (redis_py.AuthenticationError, redis_py.ResponseError):
            return True  # up, and wants credentials
        except redis_py.RedisError:
            return False
        finally:
            client.close()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise ServiceStartError(
                    f"redis-server on port {self.port} exited with code {code}:\n"
                    f"{_process.tail(self.log_path)}")
            if self._answers_ping():
                return
            time.sleep(0.05)
        raise ServiceStartError(
            f"redis-server on port {self.port} did not answer PING within {timeout:.0f} s:\n"
            f"{_process.tail(self.log_path)}")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (redis then flushes the AOF, if on, and exits), SIGKILL after timeout."""
        _process.terminate(self._proc, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        _process.kill(self._proc)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
