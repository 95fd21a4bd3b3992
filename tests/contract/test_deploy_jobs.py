"""`task deploy`'s wait for a Job (tools/deploy/plan.py), run as `task deploy` runs it
(tools/deploy/shell.py) by the real kubectl against a fake API server
(tests/contract/fake_apiserver.py). A bootstrap Job that fails while the deploy waits ends
the wait at once (not at its activeDeadlineSeconds), the log shown is its last pod's (by
creation time: `kubectl logs job/...` would pick another), and the deploy stops naming the
reason and the fix; one that completes shows its last pod's log and the deploy goes on.
This holds what the plan relies on kubectl for: a jsonpath wait keeps waiting while the Job
has no condition, `--timeout=0s` looks once, `--sort-by` with `{.items[-1:]}` names the
newest pod."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.fake_apiserver import FakeCluster, serving
from tests.contract.k8s_support import kubectl, rendered
from tools import REPO_ROOT
from tools.deploy.plan import JOBS, Command, Phase, Tools, deploy_plan
from tools.deploy.secret import load_secrets
from tools.deploy.shell import run

JOB = "saga-bootstrap"
# Three attempts (backoffLimit 2); their names do not sort as they were created.
PODS = {f"{JOB}-x7k2p": ("2026-01-01T00:01:30Z", "attempt 3: products.0.price: a decimal "
                                                  "string, not a number\n"),
        f"{JOB}-a91qz": ("2026-01-01T00:00:10Z", "attempt 1\n"),
        f"{JOB}-m3c8d": ("2026-01-01T00:00:40Z", "attempt 2\n")}
LAST = f"{JOB}-x7k2p"
FAILED = {"failed": 3, "conditions": [
    {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
     "message": "Job has reached the specified backoff limit"},
    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
     "message": "Job has reached the specified backoff limit"}]}
COMPLETED = {"succeeded": 1, "failed": 2, "conditions": [
    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
    {"type": "Complete", "status": "True", "reason": "CompletionsReached"}]}


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    fake = FakeCluster("order-saga", JOB, PODS)
    config = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(config))
    with serving(fake, config):
        yield fake


def waits_for_the_job() -> Phase:
    """The bootstrap Job's phase of the deploy, from its wait on (deleting and applying the
    Job need more of an API server than the fake has)."""
    tools = Tools(kubectl=kubectl())
    phases = deploy_plan(rendered("dev"), load_secrets(REPO_ROOT), {}, tools)
    [phase] = [p for p in phases if p.title == JOBS["bootstrap"].title]
    steps = [s for s in phase.steps if isinstance(s, Command)
             and s.argv[1] not in ("delete", "apply")]
    assert [s.argv[:2] for s in steps] == [(tools.kubectl, "wait"), ("sh", "-c")]
    assert "--timeout=360s" in steps[0].argv  # the Job's activeDeadlineSeconds and a minute
    return Phase(phase.title, tuple(steps))


class Deploy(threading.Thread):
    """The phase run as `task deploy` runs it: its commands write to this process's stdout
    and stderr (capfd), the runner's echo to `echo`."""

    def __init__(self, phase: Phase) -> None:
        super().__init__(name="deploy")
        self.phase, self.echo, self.code = phase, io.StringIO(), -1
        self.start()

    def run(self) -> None:
        self.code = run([self.phase], echo=self.echo)


def test_a_job_that_fails_while_waited_for_stops_the_deploy_at_once(
        cluster: FakeCluster, capfd: pytest.CaptureFixture[str]) -> None:
    deploy = Deploy(waits_for_the_job())
    assert cluster.watching.wait(30), "kubectl did not watch the Job"
    assert deploy.is_alive()  # the Job has no condition yet: kubectl waits on
    failed_at = time.monotonic()
    cluster.set_job_status(FAILED)
    deploy.join(30)
    took = time.monotonic() - failed_at
    out, err = capfd.readouterr()
    assert deploy.code == 1, out + err
    assert took < 10, f"the deploy took {took:.1f} s to notice the failed Job"
    # The attempt that failed the Job, not the first (after kubectl wait's own line).
    assert out.endswith(PODS[LAST][1]) and "attempt 1" not in out, out
    assert (f"task deploy: Job {JOB} failed (BackoffLimitExceeded): its last pod's log is "
            "above; fix what the log names: the catalogue") in err, err
    assert "deploy stopped: exit code 1" in deploy.echo.getvalue()


def test_a_completed_job_shows_its_last_pods_log_and_the_deploy_goes_on(
        cluster: FakeCluster, capfd: pytest.CaptureFixture[str]) -> None:
    cluster.set_job_status(COMPLETED)
    deploy = Deploy(waits_for_the_job())
    deploy.join(30)
    out, err = capfd.readouterr()
    assert deploy.code == 0, out + err
    assert out.endswith(PODS[LAST][1]) and "attempt 1" not in out, out
    assert "failed" not in err
