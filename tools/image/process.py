"""A container of the image as a process here, made as a container runtime makes one
(podman and crun refuse this machine's cgroup setup): `unshare` gives it private mount, UTS
and PID namespaces, where a small root init (sh) mounts the image's filesystem read-only
under what a runtime adds (/etc/hosts, resolv.conf, hostname, device nodes, /proc, /sys, a
tmpfs /dev/shm), runs ARGV as the container's user with no_new_privs in its working
directory, passes SIGTERM and SIGINT on and exits with its status. The network is the
host's. If our process dies, even SIGKILLed, parent-death signals end the namespace."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import psutil

from tools.image.buildah import ImageError
from tools.image.container import Container
from tools.infra.ports import LOOPBACK
from tools.infra.server import ChildServer, ServerError, StopSteps

_PREFIX = "saga-image-"
_NODES = ("null", "zero", "full", "random", "urandom", "tty")
LAUNCH = r"""
set -eu
view=$1 rootfs=$2 runtime=$3 name=$4 workdir=$5 uid=$6 gid=$7 mount=$8 setpriv=$9
shift 9
unshare=$1 hostname=$2
shift 2
"$mount" -t overlay overlay -o "lowerdir=$runtime:$rootfs" "$view"
"$mount" -t proc -o nosuid,nodev,noexec proc "$view/proc"
"$mount" -t sysfs -o ro,nosuid,nodev,noexec sysfs "$view/sys"
for node in NODES; do "$mount" --bind "/dev/$node" "$view/dev/$node"; done
"$mount" -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=64m shm "$view/dev/shm"
"$hostname" "$name"
set +e
"$setpriv" --no-new-privs -- "$unshare" --root="$view" --wd="$workdir" \
    --setuid="$uid" --setgid="$gid" -- "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
while :; do
    wait "$child"
    status=$?
    kill -0 "$child" 2>/dev/null || exit "$status"
done
""".replace("NODES", " ".join(_NODES))


class ImageProcessError(ServerError, ImageError):
    """A process from the image did not start, answer or stop."""


class Sandbox:
    """The folders one container needs here: the runtime's layer and the mount point."""

    def __init__(self, name: str) -> None:
        _remove_stale_sandboxes()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-{name}-"))
        self.view = self.folder / "view"
        self.runtime = self.folder / "runtime"
        for sub in ("etc", "proc", "sys", "dev/shm"):
            (self.runtime / sub).mkdir(parents=True)
        self.view.mkdir()
        for path in ("/etc/hosts", "/etc/resolv.conf"):
            if Path(path).is_file():
                shutil.copyfile(path, self.runtime / path.lstrip("/"))
        (self.runtime / "etc" / "hostname").write_text(f"{name}\n", encoding="utf-8")
        dev = self.runtime / "dev"
        for node in _NODES:
            (dev / node).touch()
        (dev / "fd").symlink_to("/proc/self/fd")
        for number, stream in enumerate(("stdin", "stdout", "stderr")):
            (dev / stream).symlink_to(f"/proc/self/fd/{number}")

    def command(self, container: Container, rootfs: Path) -> list[str]:
        for path, content in container.files.items():  # its volumes, under the image
            target = self.runtime / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        tools = [_host_tool(name) for name in ("mount", "setpriv", "unshare", "hostname")]
        return [_host_tool("setpriv"), "--pdeathsig", "KILL", "--",
                _host_tool("unshare"), "--mount", "--uts", "--pid", "--fork",
                "--kill-child=KILL", "--propagation", "private", "--",
                _host_tool("sh"), "-c", LAUNCH, "launch",
                str(self.view), str(rootfs), str(self.runtime), container.name,
                container.workdir, str(container.uid), str(container.gid), *tools,
                *container.argv]

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@cache
def _remove_stale_sandboxes() -> None:
    """Remove the folders of sandboxes whose process died without removing them (SIGKILL);
    their mounts lived in namespaces that died with them."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        pid = folder.name.removeprefix(_PREFIX).split("-")[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _host_tool(name: str) -> str:
    found = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise ImageError(f"{name} is missing on this machine (util-linux, mount, hostname)")
    return found


class ImageProcess(ChildServer):
    """A serving container (a Knative Service's): started on a free port (its PORT, as
    Knative sets it), ready when GET `ready_path` answers 200."""

    what = "process from the image"
    error = ImageProcessError

    def __init__(self, container: Container, rootfs: Path, log_path: Path, *,
                 ready_path: str, grace_s: float = 10.0) -> None:
        super().__init__(None, log_path)
        self.container = container
        self._rootfs = rootfs
        self._ready_path = ready_path
        self._grace_s = grace_s
        self._sandbox: Sandbox | None = None
        # From the container's process starting (fork, before its exec of setpriv, unshare
        # and Python) to the first 200 of ready_path; the sandbox's mounts come before.
        self.ready_s: float | None = None
        self.exit_status: int | None = None  # set by stop()

    def start(self, timeout: float = 60.0) -> str:
        address = super().start(timeout)
        pid = self.main_pid
        self.ready_s = process_age(pid) if pid is not None else None
        return address

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        return http_call(self.port, "GET", path, timeout=timeout)

    @property
    def main_pid(self) -> int | None:
        """The host pid of the container's own process (the namespace's init's child)."""
        init = self._init()
        if init is None:
            return None
        children = init.children()
        return children[0].pid if children else None

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, as the kubelet sends it (the init passes it on), then SIGKILL after the
        grace period. `exit_status` says how it ended: the process's own exit code, or None
        when it had to be killed."""
        proc, init = self._proc, self._init()
        if proc is not None and init is not None:
            try:
                init.send_signal(signal.SIGTERM)
                # The unshare at the top exits with the init's status, which is the process's.
                self.exit_status = proc.wait(timeout or self._grace_s)
            except (psutil.NoSuchProcess, subprocess.TimeoutExpired):
                self.exit_status = proc.poll()
        super().stop(timeout)
        if self._sandbox is not None:
            self._sandbox.remove()
            self._sandbox = None

    def _init(self) -> psutil.Process | None:
        pid = self.pid
        if pid is None:
            return None
        try:
            children = psutil.Process(pid).children()
        except psutil.NoSuchProcess:
            return None
        return children[0] if children else None

    def _spawn(self, port: int) -> int:
        if self._sandbox is not None:
            self._sandbox.remove()
        self._sandbox = Sandbox(self.container.name)
        env = dict(self.container.env) | {"PORT": str(port)}
        return self._launch(self._sandbox.command(self.container, self._rootfs), port=port,
                            env=env, die_with_parent=False)

    def _ready(self, timeout: float) -> bool:
        try:
            status, _ = http_call(self.port, "GET", self._ready_path, timeout=timeout)
        except OSError:
            return False
        return status == 200

    def _stop_steps(self, timeout: float | None) -> StopSteps:
        # The unshare at the top passes no signal on; stop() has ended the init, and with
        # it the namespace, unless the process outlived its grace period.
        return [(signal.SIGKILL, 5.0)]


def process_age(pid: int) -> float:
    """Seconds since `pid` started, on the kernel's clock (to a clock tick, 10 ms)."""
    with open("/proc/uptime", encoding="ascii") as uptime:
        now = float(uptime.read().split()[0])
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return now - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime


def run_container(container: Container, rootfs: Path, *, timeout: float = 300.0,
                  env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a container to its end (a Job's): its exit code and output (stdout and stderr
    together)."""
    sandbox = Sandbox(container.name)
    try:
        return subprocess.run(sandbox.command(container, rootfs),
                              env=dict(container.env) | dict(env or {}),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              check=False)
    finally:
        sandbox.remove()


def http_call(port: int, method: str, path: str, *, body: bytes | None = None,
              headers: Mapping[str, str] | None = None,
              timeout: float = 10.0) -> tuple[int, bytes]:
    """One HTTP request to 127.0.0.1:`port`; its status and body."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
