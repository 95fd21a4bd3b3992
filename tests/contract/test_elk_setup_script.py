"""`task elk:setup` / `task elk:import` (elk/scripts/setup.sh, also run by the cluster's Job
and the local Docker stack) against a stand-in Elasticsearch and Kibana on loopback: the
right requests, the repository's files as bodies, credentials sent, refusals reported."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.contract import ELK, SAVED_OBJECTS
from tools import REPO_ROOT

TASK = REPO_ROOT / ".venv" / "bin" / "task"
pytestmark = pytest.mark.skipif(
    not (TASK.exists() and shutil.which("curl") and shutil.which("sh")),
    reason="needs task (go-task-bin in .venv), curl and sh")


@dataclass
class Stub:
    url: str
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    import_answer: dict[str, Any] = field(default_factory=lambda: {"success": True})


@pytest.fixture
def stub() -> Iterator[Stub]:
    """One loopback server that answers as Elasticsearch and as Kibana would."""
    state = Stub("")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: dict[str, Any]) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append((self.command, self.path, dict(self.headers),
                                   self.rfile.read(length)))
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer({"status": "green"})

        def do_PUT(self) -> None:
            self._answer({"acknowledged": True})

        def do_POST(self) -> None:
            self._answer(state.import_answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _task(name: str, stub: Stub, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "ES_URL": stub.url, "KIBANA_URL": stub.url,
                   "ELK_WAIT_S": "5", **env}
    return subprocess.run([str(TASK), "-t", str(REPO_ROOT / "taskfiles" / "elk.yml"), name],
                          capture_output=True, text=True, env=environment, timeout=60,
                          check=False)


def test_setup_installs_templates_then_imports_the_dashboards(stub: Stub) -> None:
    result = _task("setup", stub, ELK_USER="elastic", ELK_PASSWORD="pw-from-a-secret")
    assert result.returncode == 0, result.stderr
    writes = [(m, p.split("?")[0], h, b) for m, p, h, b in stub.requests if m != "GET"]
    assert [(m, p) for m, p, _, _ in writes] == [
        ("PUT", "/_ilm/policy/saga-logs"),
        ("PUT", "/_component_template/saga-logs@mappings"),
        ("PUT", "/_component_template/saga-logs@settings"),
        ("PUT", "/_index_template/logs-saga"),
        ("POST", "/api/saved_objects/_import"),
    ]
    es = ELK / "elasticsearch"
    for (_, _, _, body), name in zip(writes, ["ilm-policy.json", "component-template-mappings"
                                              ".json", "component-template-settings.json",
                                              "index-template.json"], strict=False):
        assert json.loads(body) == json.loads((es / name).read_text())
    _, _, headers, body = writes[-1]
    assert headers["kbn-xsrf"] == "true"
    assert SAVED_OBJECTS.read_bytes() in body  # the NDJSON as a multipart file
    expected = "Basic " + base64.b64encode(b"elastic:pw-from-a-secret").decode()
    assert all(h.get("Authorization") == expected for _, _, h, _ in stub.requests)
    assert "pw-from-a-secret" not in result.stdout + result.stderr


def test_import_alone_posts_only_the_saved_objects(stub: Stub) -> None:
    result = _task("import", stub)
    assert result.returncode == 0, result.stderr
    assert [(m, p) for m, p, _, _ in stub.requests if m != "GET"] == [
        ("POST", "/api/saved_objects/_import?overwrite=true")]
    assert all("Authorization" not in h for _, _, h, _ in stub.requests)


def test_a_refused_import_fails_the_task(stub: Stub) -> None:
    stub.import_answer = {"success": False, "errors": [{"id": "saga-overview"}]}
    result = _task("import", stub)
    assert result.returncode != 0
    assert "refused" in result.stderr
