"""What running Apache Kafka needs on this machine: a Java 17+ runtime, and the broker's jars,
fetched from Maven Central by `mvn` through tools/infra/kafka/pom.xml the first time and
kept in the user's cache, keyed by the Kafka version, so a new state dir (or a test's
temporary one) and every later start download nothing.

Every missing piece is reported with the command that fixes it. The download shows its
progress (tools/progress.py): megabytes and files fetched, as Maven reports them.
"""

from __future__ import annotations

import collections
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tools.infra.server import ServerError
from tools.progress import Progress, Task

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
MIN_JAVA = 17  # Kafka 4 brokers run on Java 17 or newer
INSTALL_JAVA = ("install OpenJDK 17 or newer (Debian/Ubuntu: apt-get install "
                "openjdk-17-jre-headless, or default-jre-headless), or point JAVA_HOME at one")
INSTALL_MAVEN = "install Maven (Debian/Ubuntu: apt-get install maven)"
_MVN_TIMEOUT_S = 900.0  # the first download: ~45 MB of jars
_COMPLETE = ".complete"  # written last: a cache dir without it is an interrupted download
# Maven's (batch mode) line for each file it fetched: "Downloaded from central: URL (6.7 MB
# at 21 MB/s)". Its sizes are decimal (kB = 1000 B).
_DOWNLOADED = re.compile(r"Downloaded from [^:]+: \S+ \((?P<size>[\d.]+) (?P<unit>B|kB|MB|GB)\b")
_MEGABYTES = {"B": 1e-6, "kB": 1e-3, "MB": 1.0, "GB": 1e3}
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class KafkaSetupError(ServerError):
    """Java, Maven or the jars are missing; the message names the fix."""


@dataclass(frozen=True)
class KafkaDist:
    java: str  # the java executable
    version: str  # Kafka's
    libs: Path  # the jars

    @property
    def classpath(self) -> str:
        return str(self.libs / "*")


def kafka_version() -> str:
    """The Kafka version pom.xml names (<kafka.version>): the one we run and cache."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(POM).getroot().find("m:properties/m:kafka.version", namespace)  # noqa: S314 (our own file)
    if node is None or not (node.text or "").strip():
        raise KafkaSetupError(f"{POM} names no <kafka.version> property")
    return (node.text or "").strip()


def cache_dir() -> Path:
    """Where the jars are kept: $XDG_CACHE_HOME/order-saga (default ~/.cache/order-saga)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "order-saga"


def find_java() -> str:
    """The java of JAVA_HOME, else the one on PATH; refused below Java 17."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        where = f"JAVA_HOME={home} has no bin/java" if home else "no `java` on PATH"
        raise KafkaSetupError(f"Apache Kafka needs Java {MIN_JAVA}+ ({where}): {INSTALL_JAVA}")
    major = java_major(java)
    if major < MIN_JAVA:
        raise KafkaSetupError(f"Apache Kafka needs Java {MIN_JAVA}+, {java} is Java {major}: "
                              f"{INSTALL_JAVA}")
    return java


@cache
def java_major(java: str) -> int:
    """The feature version of a java executable (8 for "1.8.0_392", 17 for "17.0.15")."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KafkaSetupError(f"{java} -version failed ({exc}): {INSTALL_JAVA}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        raise KafkaSetupError(f"cannot tell the version of {java} from its -version output: "
                              f"{INSTALL_JAVA}")
    first = int(match[1])
    return int(match[2] or 0) if first == 1 else first


def ensure_dist(progress: Progress | None = None) -> KafkaDist:
    """Java, and the jars of kafka_version() in the cache (fetched with mvn if missing,
    showing its progress on stderr unless `progress` says otherwise)."""
    java = find_java()
    version = kafka_version()
    home = cache_dir() / f"kafka-{version}"
    libs = home / "libs"
    if not (libs / _COMPLETE).exists():
        _fetch(home, libs, version, progress or Progress.on_stderr("saga"))
    return KafkaDist(java=java, version=version, libs=libs)


def _fetch(home: Path, libs: Path, version: str, progress: Progress) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError(f"the jars of Apache Kafka {version} are fetched from Maven "
                              f"Central with Maven the first time, and there is no `mvn` on "
                              f"PATH: {INSTALL_MAVEN}")
    home.mkdir(parents=True, exist_ok=True)
    # One download at a time (two test sessions, or `up` beside a test run): the others
    # wait here and find the jars there.
    with (home / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with progress.task(f"waiting for another process fetching the jars into {libs}"):
                fcntl.flock(lock, fcntl.LOCK_EX)
        if (libs / _COMPLETE).exists():
            return
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=home))
        try:
            command = [mvn, "-B", "-Dstyle.color=never", "-f", str(POM),
                       "dependency:copy-dependencies", "-DincludeScope=runtime",
                       f"-DoutputDirectory={staging}"]
            # 45 MB of jars; about 60 MB with Maven's own plugin when ~/.m2 is empty.
            with progress.task(f"fetching Apache Kafka {version}'s jars with Maven (once, "
                               "45-60 MB)", unit="MB", decimals=1) as task:
                code, output = _maven(command, task)
            if code is None:
                raise KafkaSetupError(f"Maven did not fetch Kafka's jars within "
                                      f"{_MVN_TIMEOUT_S:.0f} s: check that Maven Central is "
                                      f"reachable and run again")
            if code != 0 or not any(staging.glob("kafka_2.13-*.jar")):
                raise KafkaSetupError(
                    f"Maven could not fetch the jars of Apache Kafka {version} (exit code "
                    f"{code}); check that Maven Central is reachable (and any "
                    f"proxy in ~/.m2/settings.xml), then run again:\n"
                    f"  {' '.join(command)}\n" + "\n".join(output[-20:]))
            (staging / _COMPLETE).write_text(version + "\n")
            shutil.rmtree(libs, ignore_errors=True)  # an interrupted earlier download
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _maven(command: Sequence[str], task: Task) -> tuple[int | None, list[str]]:
    """Run Maven, counting what it reports fetched into `task`: (its exit code, or None if
    it was stopped at the timeout; its last lines)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, errors="replace")
    timer = threading.Timer(_MVN_TIMEOUT_S, process.kill)
    timer.start()
    last: collections.deque[str] = collections.deque(maxlen=40)
    files = 0
    try:
        assert process.stdout is not None
        with process.stdout:
            for raw in process.stdout:
                line = _COLOUR.sub("", raw.rstrip())
                last.append(line)
                fetched = _DOWNLOADED.search(line)
                if fetched is not None:
                    files += 1
                    task.advance(float(fetched["size"]) * _MEGABYTES[fetched["unit"]])
                    task.update(detail=f"{files} files")
        code = process.wait()
    finally:
        timed_out = not timer.is_alive()
        timer.cancel()
        if process.poll() is None:  # interrupted (Ctrl-C): Maven does not outlive us
            process.kill()
            process.wait()
    return (None if timed_out else code), list(last)
