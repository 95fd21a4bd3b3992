"""What the local runtime's integration tests share: the echo function
(fixtures/runtime_echo.py: it records every event it receives in the file
RUNTIME_ECHO_RECORD names and answers as the event's data asks), run as the runtime runs
it, and Knative manifests written into a test's own checkout."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tools import REPO_ROOT
from tools.manifests.specs import FunctionSpec
from tools.runtime.console import Console
from tools.runtime.serving.function_process import FunctionProcess

ECHO = str(Path(__file__).parent / "fixtures" / "runtime_echo.py")


def echo_spec(name: str = "echo", min_scale: int = 1) -> FunctionSpec:
    return FunctionSpec(name=name, target="echo", source=ECHO, signature_type="cloudevent",
                        env={"THREADS": "4"}, min_scale=min_scale, public=False)


@contextmanager
def echo_process(record: Path, log_dir: Path) -> Iterator[FunctionProcess]:
    """The echo function started as the runtime starts it, recording into `record`."""
    function = FunctionProcess(echo_spec(), cwd=REPO_ROOT,
                               env={"RUNTIME_ECHO_RECORD": str(record)}, log_dir=log_dir,
                               console=Console(), idle_after=3600)
    function.start()
    try:
        yield function
    finally:
        function.stop()


def knative_service(name: str, *, target: str, source: str, signature: str,
                    public: bool = False, env: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Knative Service running `target` of `source` as our image's functions run."""
    variables = {"FUNCTION_TARGET": target, "FUNCTION_SOURCE": source,
                 "FUNCTION_SIGNATURE_TYPE": signature, **(env or {})}
    template: dict[str, Any] = {"spec": {"containers": [{
        "image": "order-saga/functions:latest", "ports": [{"containerPort": 8080}],
        "env": [{"name": key, "value": value} for key, value in variables.items()]}]}}
    if annotations:
        template["metadata"] = {"annotations": dict(annotations)}
    visibility = "exposed" if public else "cluster-local"
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name,
                         "labels": {"networking.knative.dev/visibility": visibility}},
            "spec": {"template": template}}


def write_manifests(root: Path, files: Mapping[str, str | dict[str, Any]]) -> None:
    """Each file under `root`: a document as YAML, a string as it is (dedented)."""
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body) if isinstance(body, str)
                        else yaml.safe_dump(body, sort_keys=False))
