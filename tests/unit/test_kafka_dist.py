"""What running Apache Kafka needs (tools/infra/kafka_dist.py): Java 17+, and the jars,
fetched with Maven once and then found in the cache. Each missing piece is refused with
the command that fixes it. No JVM runs here: `java` is a stand-in script that prints a
version the way the real one does, and `mvn` one that prints what Maven prints as it fetches
(a real download: tests/conftest.py's session start, the first time on a machine)."""

from __future__ import annotations

import io
import re
import stat
from pathlib import Path

import pytest

from tools.infra.kafka_dist import (
    KafkaSetupError,
    cache_dir,
    ensure_dist,
    find_java,
    java_major,
    kafka_version,
)
from tools.progress import Progress


def _java(home: Path, version: str) -> Path:
    """A JAVA_HOME whose bin/java prints `version` as `java -version` does (on stderr)."""
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2025-04-15\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return java


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache and a PATH with nothing on it (no mvn, no java)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return tmp_path


def test_the_version_is_the_poms() -> None:
    assert re.fullmatch(r"4\.\d+\.\d+", kafka_version())


def test_java_versions_are_read_as_java_prints_them(tmp_path: Path) -> None:
    assert java_major(str(_java(tmp_path / "17", "17.0.15"))) == 17
    assert java_major(str(_java(tmp_path / "21", "21"))) == 21
    assert java_major(str(_java(tmp_path / "8", "1.8.0_392"))) == 8


@pytest.mark.usefixtures("machine")
def test_no_java_names_the_fix() -> None:
    with pytest.raises(KafkaSetupError, match="apt-get install openjdk-17-jre-headless"):
        find_java()


def test_an_old_java_names_the_fix(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _java(machine / "jdk11", "11.0.2")
    monkeypatch.setenv("JAVA_HOME", str(machine / "jdk11"))
    with pytest.raises(KafkaSetupError, match=r"is Java 11: install OpenJDK 17"):
        find_java()


def test_no_maven_names_the_fix_when_the_jars_are_not_cached(
        machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _java(machine / "jdk", "17.0.15")
    monkeypatch.setenv("JAVA_HOME", str(machine / "jdk"))
    with pytest.raises(KafkaSetupError, match="apt-get install maven"):
        ensure_dist()


def test_cached_jars_need_no_maven(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _java(machine / "jdk", "17.0.15")
    monkeypatch.setenv("JAVA_HOME", str(machine / "jdk"))
    libs = cache_dir() / f"kafka-{kafka_version()}" / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").write_text(kafka_version())
    dist = ensure_dist()  # no mvn on PATH: a second start downloads nothing
    assert dist.libs == libs and dist.classpath == f"{libs}/*"
    assert dist.java == str(machine / "jdk" / "bin" / "java")


def _maven(bin_dir: Path, *, fails: bool = False) -> None:
    """An `mvn` on PATH that prints what Maven prints while it fetches three files (in
    batch mode), and copies a jar into -DoutputDirectory (or fails, as it does offline)."""
    bin_dir.mkdir(parents=True)
    mvn = bin_dir / "mvn"
    central = "Downloaded from central: https://repo.maven.apache.org/maven2"
    body = "echo '[ERROR] Could not transfer artifact: Network is unreachable'; exit 1" if fails \
        else "\n".join([
            f"echo '[INFO] {central}/org/apache/kafka/kafka_2.13/x/kafka_2.13-x.pom (4.5 kB at 9 kB/s)'",  # noqa: E501
            f"echo '[INFO] {central}/org/apache/kafka/kafka_2.13/x/kafka_2.13-x.jar (6.6 MB at 21 MB/s)'",  # noqa: E501
            f"echo '[INFO] {central}/com/github/luben/zstd-jni/x/zstd-jni-x.jar (300 kB at 2 MB/s)'",  # noqa: E501
            'for arg; do case "$arg" in -DoutputDirectory=*) out="${arg#*=}";; esac; done',
            ': > "$out/kafka_2.13-4.1.1.jar"'])  # PATH is empty: shell built-ins only
    mvn.write_text("#!/bin/sh\n" + body + "\n")
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)


def test_the_first_download_shows_what_maven_fetched(
        machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _java(machine / "jdk", "17.0.15")
    monkeypatch.setenv("JAVA_HOME", str(machine / "jdk"))
    _maven(machine / "empty")  # the PATH of `machine`
    shown = io.StringIO()
    dist = ensure_dist(Progress("saga", mode="plain", stream=shown))
    assert (dist.libs / "kafka_2.13-4.1.1.jar").exists() and (dist.libs / ".complete").exists()
    assert re.fullmatch(
        rf"saga: fetching Apache Kafka {re.escape(kafka_version())}'s jars with Maven "
        r"\(once, 45-60 MB\): 6\.9 MB in 0:00:0\d \([\d.,]+ MB/s\); 3 files\n", shown.getvalue())


def test_a_failed_download_says_what_maven_said(
        machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _java(machine / "jdk", "17.0.15")
    monkeypatch.setenv("JAVA_HOME", str(machine / "jdk"))
    _maven(machine / "empty", fails=True)
    with pytest.raises(KafkaSetupError, match=r"(?s)exit code 1.*Network is unreachable"):
        ensure_dist(Progress.silent())
    assert not (cache_dir() / f"kafka-{kafka_version()}" / "libs").exists()
