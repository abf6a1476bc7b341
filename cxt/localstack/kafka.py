"""A single-node Apache Kafka (KRaft) broker run from jars fetched via Maven.

No Docker engine is needed: Maven Central serves the broker's jars, and
`kafka.Kafka` runs straight from them on the local JVM.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from cxt.localstack import _process
from cxt.localstack.errors import PrerequisiteError, ServiceStartError
from cxt.localstack.ports import free_port, port_in_use

T = TypeVar("T")

MIN_JAVA = 17
_MARKER = "libs.complete"

# log4j-slf4j-impl binds the slf4j 1.7 API that Kafka uses to log4j2; without
# it the broker logs nothing and a failed start is a mystery.
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cx-timeline</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
"""


# --- prerequisites ---------------------------------------------------------

def _java_major(java: str) -> int | None:
    """The major version `java -version` reports (8 for "1.8.0_x"), or None."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def ensure_java() -> str:
    """Path of a java >= 17 (Kafka 4 needs it), or PrerequisiteError."""
    java = shutil.which("java")
    hint = "apt-get install openjdk-17-jre-headless (or any Java >= 17 on PATH)"
    if java is None:
        raise PrerequisiteError(f"java not found: {hint}")
    major = _java_major(java)
    if major is None or major < MIN_JAVA:
        raise PrerequisiteError(
            f"{java} is Java {major or 'of unknown version'}; Kafka needs >= {MIN_JAVA}: {hint}")
    return java


def _ensure_mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteError(
            "mvn not found (needed once to fetch the Kafka jars): apt-get install maven")
    return mvn


# --- jars -------------------------------------------------------------------

@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Two test sessions starting at once must not run maven into the same dir.
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch_libs(mvn: str, version: str, home: Path, libs: Path) -> None:
    """Run maven into a scratch dir, then move it into place (never half a dir)."""
    (home / "pom.xml").write_text(_POM.format(version=version))
    partial = home / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    log = home / "mvn.log"
    with log.open("wb") as out:
        result = subprocess.run(
            [mvn, "-q", "-B", "dependency:copy-dependencies",
             f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
            cwd=home, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0 or not any(partial.glob("kafka_2.13-*.jar")):
        raise PrerequisiteError(
            f"maven could not fetch Apache Kafka {version} (is Maven Central reachable?); "
            f"see {log}:\n{_process.tail(log)}")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)


def ensure_kafka_libs(version: str, cache_dir: Path) -> Path:
    """Directory of the broker's jars; fetched with maven on the first call only."""
    ensure_java()
    home = Path(cache_dir).expanduser() / f"kafka-{version}"
    libs = home / "libs"
    if (home / _MARKER).exists():
        return libs
    mvn = _ensure_mvn()
    home.mkdir(parents=True, exist_ok=True)
    with _file_lock(home / ".lock"):
        if (home / _MARKER).exists():  # another process fetched while we waited
            return libs
        print(f"fetching Apache Kafka {version} from Maven Central into {libs} "
              "(first run only)", file=sys.stderr, flush=True)
        _fetch_libs(mvn, version, home, libs)
        (home / _MARKER).write_text("\n".join(sorted(p.name for p in libs.iterdir())) + "\n")
    return libs


# --- readiness probe --------------------------------------------------------

def _run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion even when the caller is inside a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    # asyncio.run refuses to nest, so give it a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _answers_metadata(bootstrap: str) -> bool:
    """True once the broker returns cluster metadata listing at least one broker."""
    from aiokafka.client import AIOKafkaClient  # heavy import, only when probing
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await client.close()


def _cluster_id() -> str:
    """Kafka's own format: URL-safe base64 of 16 random bytes, unpadded."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # One in 64 starts with "-", which StorageTool's parser takes for an option.
        if not cluster_id.startswith("-"):
            return cluster_id


# --- broker -----------------------------------------------------------------

class KafkaBroker:
    """One KRaft node (broker + controller) listening on 127.0.0.1:port.

    `listeners`: more client listeners, {name: (security protocol, port)}, e.g.
    {"SECURE": ("SASL_SSL", 9093)}; their TLS and SASL options go in `properties`
    (`listener.name.secure.ssl.keystore.location=...`).  `format_args` are added to the
    storage format, e.g. `--add-scram` users.  The PLAINTEXT listener on `port` stays: the
    broker talks to itself and answers the readiness probe there.
    """

    def __init__(self, *, port: int, data_dir: Path, libs_dir: Path,
                 heap: str = "-Xms256m -Xmx512m", controller_port: int | None = None,
                 listeners: dict[str, tuple[str, int]] | None = None,
                 properties: Sequence[str] = (), format_args: Sequence[str] = ()) -> None:
        self.port = port
        self.data_dir = Path(data_dir)
        self.libs_dir = Path(libs_dir)
        self.heap = heap
        self.controller_port = controller_port
        self.listeners = dict(listeners or {})
        self.properties = tuple(properties)
        self.format_args = tuple(format_args)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def _stdout_path(self) -> Path:
        # JVM-level failures (bad heap flag, missing class) never reach log4j.
        return self.data_dir / "broker.out"

    @property
    def _log_dirs(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _properties(self, controller_port: int) -> str:
        extra = "".join(f",{name}://127.0.0.1:{port}"
                        for name, (_, port) in self.listeners.items())
        protocols = "".join(f",{name}:{protocol}"
                            for name, (protocol, _) in self.listeners.items())
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{controller_port}{extra}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}{extra}",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{protocols}",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self._log_dirs}",
            "num.partitions=1",
            # Single node: every internal topic can only have one replica.
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # Otherwise every consumer group waits 3 s before its first assignment.
            "group.initial.rebalance.delay.ms=0",
            # Topics come from `cxt topics create`; a typo must fail, not create one.
            "auto.create.topics.enable=false",
            *self.properties,
            "",
        ])

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.controller_port is None:
            self.controller_port = free_port()
        props = self.data_dir / "server.properties"
        props.write_text(self._properties(self.controller_port))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J.format(log=self.log_path))
        return props

    def _java(self, main: str, *args: str, heap: str) -> list[str]:
        return [ensure_java(), *shlex.split(heap),
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                "-cp", f"{self.libs_dir}/*", main, *args]

    def _format_once(self, props: Path) -> None:
        """Format the storage on first start only, so a restart keeps its topics."""
        if (self._log_dirs / "meta.properties").exists():
            return
        argv = self._java("kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                          "-c", str(props), *self.format_args, heap="-Xmx256m")
        result = subprocess.run(argv, capture_output=True, text=True, check=False,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise ServiceStartError(
                f"formatting Kafka storage in {self._log_dirs} failed:\n"
                f"{result.stdout}{result.stderr}")

    def start(self, timeout: float = 60) -> KafkaBroker:
        """Start the broker and return once it answers a metadata request."""
        if self.running:
            return self
        if port_in_use("127.0.0.1", self.port):
            raise ServiceStartError(f"cannot start Kafka: port {self.port} is already in use")
        props = self._write_config()
        self._format_once(props)
        self._proc = _process.spawn(self._java("kafka.Kafka", str(props), heap=self.heap),
                                    cwd=self.data_dir, output=self._stdout_path)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop(timeout=5)
            raise
        return self

    def _failure(self, what: str) -> ServiceStartError:
        return ServiceStartError(
            f"Kafka broker on {self.bootstrap} {what}.\n"
            f"--- {self.log_path} (tail) ---\n{_process.tail(self.log_path)}\n"
            f"--- {self._stdout_path} (tail) ---\n{_process.tail(self._stdout_path, 15)}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise self._failure(f"exited with code {code} while starting")
            # Probing only after the port opens keeps aiokafka from logging
            # a connection error for every early attempt.
            if port_in_use("127.0.0.1", self.port) and _run_sync(
                    lambda: _answers_metadata(self.bootstrap)):
                return
            time.sleep(0.2)
        raise self._failure(f"did not answer a metadata request within {timeout:.0f} s")

    def stop(self, timeout: float = 20) -> None:
        """Orderly shutdown (SIGTERM), SIGKILL after timeout.  Idempotent."""
        _process.terminate(self._proc, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the data dir stays for a restart."""
        _process.kill(self._proc)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
