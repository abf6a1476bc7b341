"""The Kafka Streams peer of bench/compare.py is skipped, with the reason, where it cannot
run (no java >= 17, no mvn, a failed build), and built only when its sources changed.
Nothing is started: Maven is a stand-in script and the checks are driven by PATH."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from cxt.localstack.errors import PrerequisiteError
from store.keys import Keys
from tests.support.helpers import REPO


@pytest.fixture(scope="module")
def compare() -> Iterator[ModuleType]:
    # bench/compare.py is a script: its siblings (harness, latency) import by module name.
    sys.path.insert(0, str(REPO / "bench"))
    try:
        yield importlib.import_module("compare")
    finally:
        sys.path.remove(str(REPO / "bench"))


def _which_without(*missing: str) -> Callable[..., str | None]:
    real = shutil.which

    def which(name: str, *args: object, **kwargs: object) -> str | None:
        return None if name in missing else real(name)

    return which


def _project(tmp_path: Path, *, built: bool = False) -> Path:
    project = tmp_path / "peer"
    (project / "src").mkdir(parents=True)
    sources = [project / "pom.xml", project / "src" / "Main.java"]
    for path in sources:
        path.write_text("<source/>\n")
        _age(path, 100)
    if built:
        jar = project / "target" / "cxt-kstreams.jar"
        jar.parent.mkdir()
        jar.write_bytes(b"jar")
        _age(jar, 50)  # built after the sources were last changed
    return project


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _fake_mvn(tmp_path: Path, script: str) -> Path:
    mvn = tmp_path / "bin" / "mvn"
    mvn.parent.mkdir()
    mvn.write_text("#!/bin/sh\n" + script)
    mvn.chmod(0o755)
    return mvn


def _java_ok(compare: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare, "ensure_java", lambda: "/usr/bin/java")


def test_no_java_skips_with_the_install_hint(compare: ModuleType,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", _which_without("java"))
    reason = compare.IMPLEMENTATIONS["kstreams"].unavailable()
    assert reason is not None and reason.startswith("java not found")
    assert "openjdk-17" in reason


def test_an_old_java_skips(compare: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def old_java() -> str:
        raise PrerequisiteError("/usr/bin/java is Java 11; Kafka needs >= 17: apt-get ...")

    monkeypatch.setattr(compare, "ensure_java", old_java)
    assert "Java 11" in (compare.build_jvm_peer() or "")


def test_no_mvn_skips_when_a_build_is_needed(compare: ModuleType, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _java_ok(compare, monkeypatch)
    monkeypatch.setattr(shutil, "which", _which_without("mvn"))
    reason = compare.build_jvm_peer(_project(tmp_path))
    assert reason is not None and reason.startswith("mvn not found")
    assert "apt-get install maven" in reason


def test_a_built_jar_needs_no_mvn(compare: ModuleType, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _java_ok(compare, monkeypatch)
    monkeypatch.setattr(shutil, "which", _which_without("mvn"))
    assert compare.build_jvm_peer(_project(tmp_path, built=True)) is None


def test_a_failed_build_skips_with_its_last_lines(compare: ModuleType, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _java_ok(compare, monkeypatch)
    mvn = _fake_mvn(tmp_path, 'for i in $(seq 1 40); do echo "build line $i"; done\n'
                              "echo '[ERROR] COMPILATION ERROR'; exit 1\n")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(mvn) if name == "mvn" else None)
    reason = compare.build_jvm_peer(_project(tmp_path))
    assert reason is not None and "the Maven build failed (exit 1)" in reason
    assert "[ERROR] COMPILATION ERROR" in reason and "build line 40" in reason
    assert "build line 1\n" not in reason  # the tail only, not the whole log
    assert "building" in capsys.readouterr().err  # a status line before the build


def test_a_changed_source_rebuilds(compare: ModuleType, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _java_ok(compare, monkeypatch)
    project = _project(tmp_path, built=True)
    assert not compare.jvm_build_needed(project)
    _age(project / "src" / "Main.java", 20)  # edited after the build
    assert compare.jvm_build_needed(project)
    # The stand-in "builds" the jar; -q keeps Maven's output out of the bench's log.
    mvn = _fake_mvn(tmp_path, 'case "$*" in *-q*) ;; *) exit 3;; esac\n'
                              f"touch {project}/target/cxt-kstreams.jar\n")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(mvn) if name == "mvn" else None)
    assert compare.build_jvm_peer(project) is None
    assert not compare.jvm_build_needed(project)


def test_a_skipped_peer_is_reported_not_failed(compare: ModuleType,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", _which_without("java"))
    impl = compare.IMPLEMENTATIONS["kstreams"]
    result = compare.run_section(impl, None, None, None, "compare")  # nothing else is touched
    assert result["status"] == "skipped" and result["reason"].startswith("java not found")
    assert "compare: kstreams: SKIPPED: java not found" in capsys.readouterr().err


def test_kstreams_is_a_default_implementation(compare: ModuleType) -> None:
    args = compare.parse_args([])
    assert [i.name for i in args.impls] == ["ours", "ceiling", "quix", "kstreams"]


def test_the_peer_gets_the_key_layout_of_store_keys(compare: ModuleType) -> None:
    keys = Keys("bench-x")
    env = compare.kstreams_env(compare.Settings().with_(redis_prefix="bench-x"))
    fill = compare.KEY_PLACEHOLDER
    assert env["KSTREAMS_KEY_TIMELINE"].replace(fill, "C-1") == keys.timeline("C-1")
    assert env["KSTREAMS_KEY_ENTRIES"].replace(fill, "C-1") == keys.entries("C-1")
    assert env["KSTREAMS_KEY_ALERT"].replace(fill, "AL-9") == keys.alert("AL-9")
    assert env["KSTREAMS_KEY_IDENTITY"].replace(fill, "phone:+44") == keys.identity("phone:+44")
    assert env["KSTREAMS_PROVISIONAL_MARK"] == "~"
