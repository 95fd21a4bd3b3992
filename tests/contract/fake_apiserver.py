"""A fake Kubernetes API server, just enough for the real kubectl to wait for one Job, list
its pods and read their logs (`kubectl wait`, `get`, `logs`): discovery, GET of a Job and
of pods, a Job's list and watch (with the streamed initial events kubectl 1.33+ asks for),
pod logs. The test changes the Job's status while kubectl watches it. Plain HTTP on
127.0.0.1; `kubeconfig()` writes the file that points kubectl at it."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

Doc = dict[str, Any]
JOB_LABEL = "batch.kubernetes.io/job-name"

_RESOURCES = {
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "list", "watch"]},
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
         "verbs": ["get"]}]},
    "/apis/batch/v1": {"kind": "APIResourceList", "groupVersion": "batch/v1", "resources": [
        {"name": "jobs", "singularName": "job", "namespaced": True, "kind": "Job",
         "verbs": ["get", "list", "watch"]}]},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": "batch", "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}}]},
}


class FakeCluster:
    """One namespace holding one Job and its pods (name -> (creation time, log))."""

    def __init__(self, namespace: str, job: str, pods: dict[str, tuple[str, str]]) -> None:
        self.namespace, self.job_name = namespace, job
        self._pods = pods
        self._version = 1
        self._status: Doc = {"active": 1}
        self._changed = threading.Condition()
        self.watching = threading.Event()  # a client watches the Job
        self._closing = False

    def set_job_status(self, status: Doc) -> None:
        """The Job's controller updated it: every watch sees a MODIFIED event."""
        with self._changed:
            self._status, self._version = status, self._version + 1
            self._changed.notify_all()

    def job(self) -> Doc:
        with self._changed:
            return self._job()

    def _job(self) -> Doc:
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": self.job_name, "namespace": self.namespace,
                             "uid": "job-uid", "resourceVersion": str(self._version),
                             "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                    {"name": "main", "image": "order-saga/functions"}]}}},
                "status": copy.deepcopy(self._status)}

    def pod(self, name: str) -> Doc:
        created, _ = self._pods[name]
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": self.namespace, "uid": f"uid-{name}",
                             "resourceVersion": "1", "creationTimestamp": created,
                             "labels": {JOB_LABEL: self.job_name}},
                "spec": {"restartPolicy": "Never", "containers": [
                    {"name": "main", "image": "order-saga/functions"}]},
                "status": {"phase": "Failed"}}

    def log(self, name: str) -> str:
        return self._pods[name][1]

    def events(self, initial: bool) -> Iterator[Doc]:
        """A watch of the Job: (with `initial`) the Job as it is and the bookmark that ends
        the initial events, then one MODIFIED event per change, until close()."""
        with self._changed:
            seen = self._version
            if initial:
                yield {"type": "ADDED", "object": self._job()}
                yield {"type": "BOOKMARK", "object": {
                    "apiVersion": "batch/v1", "kind": "Job", "metadata": {
                        "resourceVersion": str(seen),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}}
            self.watching.set()
            while not self._closing:
                self._changed.wait_for(self._moved_on(seen))
                if self._version != seen:
                    seen = self._version
                    yield {"type": "MODIFIED", "object": self._job()}

    def _moved_on(self, seen: int) -> Callable[[], bool]:
        return lambda: self._version != seen or self._closing

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    jobs = f"/apis/batch/v1/namespaces/{cluster.namespace}/jobs"
    pods = f"/api/v1/namespaces/{cluster.namespace}/pods"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # a watch streams until the connection closes

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            path = url.path
            if path in _RESOURCES:
                self._json(_RESOURCES[path])
            elif path == f"{jobs}/{cluster.job_name}":
                self._json(cluster.job())
            elif path == jobs and query.get("watch") == ["true"]:
                self._watch(initial=query.get("sendInitialEvents") == ["true"])
            elif path == jobs:
                self._json({"apiVersion": "batch/v1", "kind": "JobList",
                            "metadata": {"resourceVersion": "1"}, "items": [cluster.job()]})
            elif path == pods:
                self._json({"apiVersion": "v1", "kind": "PodList",
                            "metadata": {"resourceVersion": "1"},
                            "items": [cluster.pod(name) for name in sorted(cluster._pods)]})
            elif path.startswith(f"{pods}/") and path.endswith("/log"):
                self._send(200, "text/plain", cluster.log(path.split("/")[-2]).encode())
            elif path.startswith(f"{pods}/") and path.split("/")[-1] in cluster._pods:
                self._json(cluster.pod(path.split("/")[-1]))
            else:
                self._json({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                            "reason": "NotFound", "code": 404}, 404)

        def _watch(self, *, initial: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for event in cluster.events(initial):
                    self.wfile.write(json.dumps(event).encode() + b"\n")
                    self.wfile.flush()
            except OSError:
                pass  # kubectl went away: its wait is over

        def _json(self, doc: Doc, status: int = 200) -> None:
            self._send(status, "application/json", json.dumps(doc).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(cluster: FakeCluster, kubeconfig: Path) -> Iterator[None]:
    """Serve `cluster` while the block runs, with `kubeconfig` written to point at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {
            "server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "fake", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
    try:
        yield
    finally:
        cluster.close()
        server.shutdown()
        server.server_close()
