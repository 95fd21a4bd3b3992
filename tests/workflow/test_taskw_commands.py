"""./taskw as a person types it: a command's exit code comes back through Task (not Task's
own 201 for "a command failed"), and the tasks a person pipes or captures (`token`) print
only their own output, with no echo of the command Task ran."""

from __future__ import annotations

import subprocess

from tools import REPO_ROOT


def taskw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO_ROOT / "taskw"), *args], capture_output=True, text=True,
                          timeout=120, check=False, stdin=subprocess.DEVNULL)


def test_bad_usage_keeps_its_exit_code_through_task() -> None:
    done = taskw("dlq", "--", "no-such-action")
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "invalid choice" in done.stderr


def test_a_token_is_the_only_output() -> None:
    done = taskw("token", "--", "--customer", "alice")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(".") == 2 and len(done.stdout.split()) == 1  # one JWT
    assert "task: [" not in done.stderr, done.stderr
