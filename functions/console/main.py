"""The console function (functions-framework HTTP entry point). Thin: functions.console.web
matches, authenticates (admins only), validates and logs; routes.py has the handlers.
Importing this module configures logging and connects to nothing."""

import functions_framework
from flask import Request
from werkzeug import Response
from werkzeug.exceptions import HTTPException

from common.events.catalogue import CONSOLE
from common.logging import configure_logging
from functions.console.routes import ROUTER
from functions.console.wiring import ConsoleResources, Problem, install_probes, problem_response

resources = ConsoleResources.from_environment()  # started and closed by the server
configure_logging(CONSOLE, resources.settings.log_level)
install_probes(resources)


def _framework_error(exc: HTTPException) -> Response:
    """Flask's own answers (its /static/ rule): problem+json like everything else."""
    return problem_response(Problem(exc.code or 500, (exc.name or "error").lower(),
                                    exc.description or ""))


functions_framework.errorhandler(HTTPException)(_framework_error)


@functions_framework.http
def console(request: Request) -> Response:
    return ROUTER.dispatch(request, resources)
