"""How the local runtime runs one function: the command a container runs
(common/serving/serve.py, with the same `--target/--source/--signature-type/--host/--port`
functions-framework takes), under the function's process title. The warm-up is the
serving path's own (common.resources), as in a pod.

Run as `python -m tools.runtime.serving.entrypoint <functions-framework arguments>` or,
preloaded, by the zygote (zygote.py) in a forked child.
"""

from __future__ import annotations

import os
import sys


def serve(argv: list[str]) -> int:
    """Serve the function `argv` names (functions-framework's arguments, without the program
    name) until it exits; its exit code."""
    from common.serving.serve import main, one_process
    from tools.runtime.proctitle import name_gunicorn, set_title

    name = os.environ.get("K_SERVICE")  # the function's name, as the runtime sets it
    if name:
        set_title(name)
        if not one_process(argv):
            name_gunicorn(name)
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
