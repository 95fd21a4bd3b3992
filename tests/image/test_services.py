"""Every Knative Service of the manifests, started from the image with its own command, user,
working directory and environment: it becomes ready, answers its readiness and liveness
probes, runs as a non-root user without privileges and stays under its memory limit (and
stops on SIGTERM: the `pods` fixture checks that when it stops them)."""

from __future__ import annotations

from collections.abc import Mapping

import psutil
import pytest

from tests.image.conftest import FIGURES, running
from tools import REPO_ROOT
from tools.image.process import ImageProcess, ImageProcessError
from tools.image.workloads import Workload
from tools.manifests.loader import load_project_manifests

SERVICES = sorted(load_project_manifests(REPO_ROOT).functions)


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        return dict(line.split(":", 1) for line in status.read().splitlines() if ":" in line)


def test_every_service_of_the_overlay_is_tested(services: Mapping[str, Workload]) -> None:
    assert sorted(services) == SERVICES


@pytest.mark.parametrize("name", SERVICES)
def test_the_service_starts_and_answers_its_probes(
    name: str, pods: Mapping[str, ImageProcess | ImageProcessError],
    services: Mapping[str, Workload],
) -> None:
    process = running(pods, name)
    workload = services[name]
    assert process.ready_s is not None
    FIGURES[f"start to ready: {name}"] = f"{process.ready_s * 1000:.0f} ms"
    for probe in ("readinessProbe", "livenessProbe"):
        path = workload.probe_path(probe)
        assert path is not None, f"{name} has no {probe}"
        status, body = process.get(path)
        assert status == 200, (probe, body[:300])


@pytest.mark.parametrize("name", SERVICES)
def test_the_service_runs_unprivileged_within_its_memory_limit(
    name: str, pods: Mapping[str, ImageProcess | ImageProcessError],
    services: Mapping[str, Workload],
) -> None:
    process = running(pods, name)
    pid = process.main_pid
    assert pid is not None
    status = _status(pid)
    uid, gid = services[name].container.uid, services[name].container.gid
    assert uid != 0
    assert status["Uid"].split() == [str(uid)] * 4 and status["Gid"].split() == [str(gid)] * 4
    assert status["Groups"].strip() == ""
    assert status["NoNewPrivs"].strip() == "1"  # allowPrivilegeEscalation: false
    assert int(status["CapEff"].strip(), 16) == 0
    limit = services[name].memory_limit
    assert limit is not None, f"{name} has no memory limit"
    family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    rss = sum(p.memory_info().rss for p in family)
    FIGURES[f"memory (RSS): {name}"] = f"{rss / 2**20:.0f} MiB of {limit / 2**20:.0f}"
    assert rss < limit * 0.8, f"{name}: {rss / 2**20:.0f} MiB of its {limit / 2**20:.0f} MiB"
