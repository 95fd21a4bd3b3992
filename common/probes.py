"""The two GET endpoints the Knative probes in knative/*.yaml call, on every function.

functions-framework serves a CloudEvent function only on POST (a GET answers 405), and the
api's own routes belong to its router, so neither can be probed as they are. On the api
(Flask) these routes are added to the app while functions-framework imports main.py (it
runs that import inside the app context, before it adds its own catch-all rules); the
event functions (ASGI) answer them in common/event_server.py. Either way:

- they exist only if the module imported cleanly: the target, its handlers, the catalogue
  and the settings all loaded;
- /readyz is answered on one of the THREADS that serve requests, so a process whose
  threads are all wedged stops being ready.

GET /livez   the process can serve. No I/O: a database outage must not make Kubernetes
             restart every pod (a restart cures nothing there).
GET /readyz  ... and PostgreSQL answers `SELECT 1` through the function's own pool. Knative
             sends no traffic to a revision until this succeeds, so a revision with a wrong
             DATABASE_URL never takes over from a working one.

The static paths win over functions-framework's `/<path:path>` rule in Werkzeug's routing,
and other methods on these paths still reach the function.
"""

from __future__ import annotations

import contextlib
import json

import flask
from sqlalchemy import text
from werkzeug import Response

from common.db import get_engine
from common.kafka import get_producer
from common.settings import get_settings

LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"

_LIVE_ENDPOINT = "saga_probe_live"
_READY_ENDPOINT = "saga_probe_ready"


def install_probes() -> None:
    """Register GET /livez and GET /readyz on the app functions-framework is building.
    Call at import time of a function's main.py; calling it twice is harmless."""
    app = flask.current_app
    if _LIVE_ENDPOINT in app.view_functions:
        return
    app.add_url_rule(LIVENESS_PATH, _LIVE_ENDPOINT, live, methods=["GET"])
    app.add_url_rule(READINESS_PATH, _READY_ENDPOINT, ready, methods=["GET"])


# Never cached: a probe answer is only true at the moment it is given.
HEADERS = {"Cache-Control": "no-store"}
Answer = tuple[int, str]  # status and JSON body, whichever server sends it
_OK = json.dumps({"status": "ok"})


def live() -> Response:
    return _flask(live_answer())


def ready() -> Response:
    return _flask(ready_answer())


def live_answer() -> Answer:
    return 200, _OK


def ready_answer() -> Answer:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # unreachable, misconfigured, out of connections: not ready
        return 503, json.dumps({"status": "unavailable", "error": type(exc).__name__})
    # Create the producer now: its first idempotent-producer setup costs ~500 ms, which
    # would otherwise land on the first event after a cold start. Best effort: readiness
    # is about the database; a missing broker setting fails the first publish, not this.
    with contextlib.suppress(Exception):
        get_producer(get_settings())
    return 200, _OK


def _flask(answer: Answer) -> Response:
    status, body = answer
    return Response(body, status=status, content_type="application/json", headers=HEADERS)
