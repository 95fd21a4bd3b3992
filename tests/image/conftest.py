"""The image tier: the image built from this checkout (tools.image, once per session, on the
cached local base), and the Services and Jobs of the dev overlay run from it as a node
would run them (tools/image/process.py), on the session's PostgreSQL and broker
(tests/conftest.py). Only the cluster's addresses and secrets are the test's: the
Secret holds the test database and JWT secret, saga-config the session's broker.

It runs when asked for: `./taskw image:test` (pytest tests/image), the last step of
`./taskw test`; a plain `pytest` over the whole suite skips it (it builds an image, and
needs root). Figures it measures are printed at the end of the run.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.conftest import TEST_JWT_SECRET, session_broker_kind
from tests.contract.k8s_support import kubectl
from tools import REPO_ROOT
from tools.deploy.manifests import Doc, render
from tools.deploy.secret import SecretSpec
from tools.image.build import DEFAULT_TAG, build
from tools.image.process import ImageProcess, ImageProcessError
from tools.image.rootfs import MountedImage
from tools.image.workloads import Workload, local_workloads

HERE = Path(__file__).resolve().parent
OVERLAY = "dev"
FIGURES: dict[str, str] = {}  # printed at the end of the run
BUILD_TIMEOUT_S = 1200


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "image: the image tier (./taskw image:test)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    asked = _asked(config)
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.image)
            # The first test's setup builds the image: from empty caches, minutes.
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT_S))
            if not asked:
                item.add_marker(pytest.mark.skip(
                    reason="the image tier: ./taskw image:test (the last step of ./taskw test)"))


def _asked(config: pytest.Config) -> bool:
    """Whether the run names this folder (or something in it), or selects `-m image`."""
    if "image" in (config.option.markexpr or ""):
        return True
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("the image's figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def image() -> str:
    """The image built from this checkout (buildah's layer cache makes a rebuild quick)."""
    began = time.monotonic()
    build(REPO_ROOT, DEFAULT_TAG)
    FIGURES["build (this run)"] = f"{time.monotonic() - began:.1f} s"
    return DEFAULT_TAG


@pytest.fixture(scope="session")
def mounted(image: str) -> Iterator[MountedImage]:
    with MountedImage(image) as found:
        yield found


@pytest.fixture(scope="session")
def overlay() -> list[Doc]:
    """The dev overlay as `kubectl kustomize` renders it: what `task deploy` applies."""
    return render(REPO_ROOT, OVERLAY, kubectl())


def cluster(overlay: list[Doc], mounted: MountedImage, database_url: str,
            kafka_bootstrap: str) -> list[Workload]:
    """Every Service and Job of the overlay as a container of the image, on the test's
    database, JWT secret and broker."""
    return local_workloads(overlay, mounted.config, mounted.path, SecretSpec.load(REPO_ROOT),
                           database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                           broker_kind=session_broker_kind(), jwt_secret=TEST_JWT_SECRET)


@pytest.fixture(scope="session")
def services(overlay: list[Doc], mounted: MountedImage, migrated_database: str,
             kafka_bootstrap: str) -> dict[str, Workload]:
    return {w.name: w for w in cluster(overlay, mounted, migrated_database, kafka_bootstrap)
            if w.kind == "Service"}


@pytest.fixture(scope="session")
def pods(services: dict[str, Workload], mounted: MountedImage,
         tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Mapping[str, ImageProcess | ImageProcessError]]:
    """Every Service's container started from the image (one after the other, each timed
    from spawning to its first ready answer), or why it did not start. Stopped at the end
    with SIGTERM, as the kubelet stops them: each must end within its grace period."""
    logs = tmp_path_factory.mktemp("image-logs")
    started: dict[str, ImageProcess | ImageProcessError] = {}
    try:
        for name, workload in services.items():
            process = ImageProcess(workload.container, mounted.path, logs / f"{name}.log",
                                   ready_path=workload.probe_path("readinessProbe") or "/")
            try:
                process.start()
                started[name] = process
            except ImageProcessError as exc:
                started[name] = exc
        yield started
    finally:
        for outcome in started.values():
            if isinstance(outcome, ImageProcess):
                outcome.stop()
    # gunicorn (the api) exits 0; uvicorn drains, then raises the SIGTERM again (143).
    clean = (0, 128 + signal.SIGTERM)
    unclean = {name: p.exit_status for name, p in started.items()
               if isinstance(p, ImageProcess) and p.exit_status not in clean}
    assert unclean == {}, f"not stopped by SIGTERM (None: it had to be killed): {unclean}"


def running(pods: Mapping[str, ImageProcess | ImageProcessError], name: str) -> ImageProcess:
    """The pod of Service `name`; fails the test with its start error if it did not start."""
    process = pods[name]
    if isinstance(process, ImageProcessError):
        pytest.fail(f"{name} did not start from the image: {process}", pytrace=False)
    return process
