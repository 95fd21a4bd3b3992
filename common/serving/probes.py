"""The two GET endpoints the Knative probes in knative/*.yaml call, on every function (the
ASGI functions in event_server.py, the api through wsgi.install_probes). They exist only if
the function's module imported cleanly.

GET /livez   the process can serve. No I/O: a database outage must not make Kubernetes
             restart every pod (a restart cures nothing there).
GET /readyz  ... and PostgreSQL answers (an empty query) through the function's own pool,
             on one of the threads that serve requests (a wedged process stops being ready).
"""

from __future__ import annotations

import json

from common.resources import Resources

LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"

# Never cached: a probe answer is only true at the moment it is given.
HEADERS = {"Cache-Control": "no-store"}
Answer = tuple[int, str]  # status and JSON body, whichever server sends it
_OK = json.dumps({"status": "ok"})


def live_answer() -> Answer:
    return 200, _OK


def ready_answer(resources: Resources) -> Answer:
    try:
        resources.ping()
    except Exception as exc:  # unreachable, misconfigured, out of connections: not ready
        return 503, json.dumps({"status": "unavailable", "error": type(exc).__name__})
    return 200, _OK
