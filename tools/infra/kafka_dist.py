"""What running Apache Kafka needs on this machine: a Java 17+ runtime, and the broker's jars,
fetched from Maven Central by `mvn` through tools/infra/kafka/pom.xml the first time and
kept in the user's cache, keyed by the Kafka version, so a new state dir (or a test's
temporary one) and every later start download nothing.

Every missing piece is reported with the command that fixes it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tools.infra.server import ServerError

logger = logging.getLogger(__name__)

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
MIN_JAVA = 17  # Kafka 4 brokers run on Java 17 or newer
INSTALL_JAVA = ("install OpenJDK 17 or newer (Debian/Ubuntu: apt-get install "
                "openjdk-17-jre-headless, or default-jre-headless), or point JAVA_HOME at one")
INSTALL_MAVEN = "install Maven (Debian/Ubuntu: apt-get install maven)"
_MVN_TIMEOUT_S = 900.0  # the first download: ~45 MB of jars
_COMPLETE = ".complete"  # written last: a cache dir without it is an interrupted download


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


def ensure_dist() -> KafkaDist:
    """Java, and the jars of kafka_version() in the cache (fetched with mvn if missing)."""
    java = find_java()
    version = kafka_version()
    home = cache_dir() / f"kafka-{version}"
    libs = home / "libs"
    if not (libs / _COMPLETE).exists():
        _fetch(home, libs, version)
    return KafkaDist(java=java, version=version, libs=libs)


def _fetch(home: Path, libs: Path, version: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError(f"the jars of Apache Kafka {version} are fetched from Maven "
                              f"Central with Maven the first time, and there is no `mvn` on "
                              f"PATH: {INSTALL_MAVEN}")
    home.mkdir(parents=True, exist_ok=True)
    # One download at a time (two test sessions, or `up` beside a test run): the others
    # wait here and find the jars there.
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (libs / _COMPLETE).exists():
            return
        began = time.monotonic()
        logger.info("fetching the jars of Apache Kafka %s with Maven (once) into %s",
                    version, libs)
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=home))
        try:
            command = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(POM),
                       "dependency:copy-dependencies", "-DincludeScope=runtime",
                       f"-DoutputDirectory={staging}"]
            try:
                done = subprocess.run(command, capture_output=True, text=True,
                                      timeout=_MVN_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                raise KafkaSetupError(f"Maven did not fetch Kafka's jars within "
                                      f"{_MVN_TIMEOUT_S:.0f} s: check that Maven Central is "
                                      f"reachable and run again") from None
            if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
                output = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
                raise KafkaSetupError(
                    f"Maven could not fetch the jars of Apache Kafka {version} (exit code "
                    f"{done.returncode}); check that Maven Central is reachable (and any "
                    f"proxy in ~/.m2/settings.xml), then run again:\n"
                    f"  {' '.join(command)}\n{output}")
            (staging / _COMPLETE).write_text(version + "\n")
            shutil.rmtree(libs, ignore_errors=True)  # an interrupted earlier download
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("fetched the jars of Apache Kafka %s in %.1f s", version,
                    time.monotonic() - began)
