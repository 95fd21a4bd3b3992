"""What a function's process runs under the local runtime: the command a container runs
(common/serve.py, with functions-framework's `--target/--source/--signature-type/--host/
--port`), the process named for `ps` (proctitle.py), plus a warm-up in the process that
serves: a background thread creates the shared Kafka producer, opens one pooled database
connection and asks for metadata a few times, so the first event need not wait for them
(docs/benchmarks.md, "The local runtime's design figures"); the api warms up in the worker
gunicorn forks, never in its master. Run as `python -m tools.runtime.serving.entrypoint
ARGS`, or by the zygote in a forked child (zygote.py)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

_METADATA_REQUESTS = 15  # ~300 ms, see above


def warm_up() -> None:
    """Open a database connection and create the Kafka producer, if configured."""
    from common.settings import get_settings

    settings = get_settings()
    producer = None
    if settings.kafka_bootstrap_servers:
        from common.kafka import get_producer

        with contextlib.suppress(Exception):
            producer = get_producer(settings)  # its broker handshake starts now
    if settings.database_url is not None:
        from common.db import get_engine

        with contextlib.suppress(Exception), get_engine(settings).connect():
            pass  # back into the pool, open
    if producer is None:
        return
    for _ in range(_METADATA_REQUESTS):
        try:
            producer.list_topics(timeout=1.0)
        except Exception:  # the broker is down: the first event will say so
            return
        time.sleep(0.02)


def _warm_in_worker(master: int) -> None:
    # Runs in every child the master forks: gunicorn's workers (also one it starts again
    # after a crash). Grandchildren (a function forking on its own) are left alone.
    if os.getppid() == master:
        threading.Thread(target=warm_up, name="saga-warm-up", daemon=True).start()


def serve(argv: list[str]) -> int:
    """Serve the function `argv` names (functions-framework's arguments, without the program
    name) until it exits; its exit code."""
    from common.serve import main, one_process
    from tools.runtime.proctitle import name_gunicorn, set_title

    name = os.environ.get("K_SERVICE")  # the function's name, as the runtime sets it
    if name:
        set_title(name)
    if one_process(argv):
        threading.Thread(target=warm_up, name="saga-warm-up", daemon=True).start()
    else:
        if name:
            name_gunicorn(name)
        master = os.getpid()
        os.register_at_fork(after_in_child=lambda: _warm_in_worker(master))
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
