"""The console function (functions-framework HTTP entry point). Thin: functions.console.web
matches, authenticates (admins only), validates and logs; routes.py has the handlers.
Importing this module configures logging and connects to nothing."""

import functions_framework
from common.probes import install_probes
from flask import Request
from werkzeug import Response
from werkzeug.exceptions import HTTPException

from common.events.catalogue import CONSOLE
from common.logging import configure_logging
from common.problems import problem_response
from common.settings import get_settings
from functions.console.routes import ROUTER

configure_logging(CONSOLE, get_settings().log_level)
install_probes()


def _framework_error(exc: HTTPException) -> Response:
    """Flask's own answers (its /static/ rule): problem+json like everything else."""
    return problem_response(exc.code or 500, (exc.name or "error").lower(), exc.description or "")


functions_framework.errorhandler(HTTPException)(_framework_error)


@functions_framework.http
def console(request: Request) -> Response:
    return ROUTER.dispatch(request)
