"""A redis-server of the test session's own (Debian's `redis-server` package), for the API's
read cache tests: on a free loopback port, nothing saved to disk, stopped at the end.

Where the binary is missing it is installed with apt-get (as root, as CI runs); if that is
impossible the session fails naming the fix, never skips: the cache tests must run.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from tools.infra.apt import apt_install
from tools.infra.ports import LOOPBACK
from tools.infra.server import ChildServer, ServerError, StopSteps

PACKAGE = "redis-server"


class RedisServerError(ServerError):
    """redis-server is missing or did not start."""


def redis_binary() -> str:
    """redis-server from PATH (or /usr/bin, which a root-less PATH may lack), installed
    with apt-get when missing."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
    if found is None:
        why = apt_install(PACKAGE)
        found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
        if found is None:
            raise RedisServerError(
                f"the cache tests need redis-server and it could not be installed "
                f"({why or 'the package put no redis-server on PATH'}): install it "
                f"(apt-get install {PACKAGE}), or set REDIS_TEST_URL=redis://host:port/0")
    return found


class RedisServer(ChildServer):
    what = "test Redis"
    error = RedisServerError

    def __init__(self, work_dir: Path) -> None:
        super().__init__(None, work_dir / "redis.log")
        self._work_dir = work_dir
        self._binary = ""

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def address(self) -> str:
        return self.url

    def _prepare(self, deadline: float) -> bool:
        self._binary = redis_binary()
        self._work_dir.mkdir(parents=True, exist_ok=True)
        return False

    def _spawn(self, port: int) -> int:
        # No snapshots, no append-only file: a cache that lives as long as the session.
        command = [self._binary, "--port", str(port), "--bind", LOOPBACK, "--save", "",
                   "--appendonly", "no", "--dir", str(self._work_dir), "--daemonize", "no",
                   "--protected-mode", "yes"]
        return self._launch(command, port=port, die_with_parent=True)

    def _ready(self, timeout: float) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=min(timeout, 0.5))
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _stop_steps(self, timeout: float | None) -> StopSteps:
        return [(signal.SIGTERM, 5.0 if timeout is None else timeout)]
