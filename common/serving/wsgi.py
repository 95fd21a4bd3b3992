"""The api's stack (functions-framework's Flask app under gunicorn): the problem renderer
and the Knative probes' routes (probes.py)."""

from __future__ import annotations

import flask
from werkzeug import Response

from common.problems import PROBLEM_JSON, Problem
from common.resources import Resources
from common.serving import probes

_LIVE_ENDPOINT = "saga_probe_live"
_READY_ENDPOINT = "saga_probe_ready"


def problem_response(problem: Problem) -> Response:
    """A Problem as werkzeug's response (the WSGI stack's renderer)."""
    response = Response(problem.body(), status=problem.status, content_type=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response


def install_probes(resources: Resources) -> None:
    """Register GET /livez and GET /readyz on the app functions-framework is building (call
    at import time of main.py; a second call changes nothing). The static paths win over
    functions-framework's `/<path:path>` rule; other methods on them reach the function."""
    app = flask.current_app
    if _LIVE_ENDPOINT in app.view_functions:
        return
    app.add_url_rule(probes.LIVENESS_PATH, _LIVE_ENDPOINT,
                     lambda: _response(probes.live_answer()), methods=["GET"])
    app.add_url_rule(probes.READINESS_PATH, _READY_ENDPOINT,
                     lambda: _response(probes.ready_answer(resources)), methods=["GET"])


def _response(answer: probes.Answer) -> Response:
    status, body = answer
    return Response(body, status=status, content_type="application/json",
                    headers=probes.HEADERS)
