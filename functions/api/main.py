"""The api function (functions-framework HTTP entry point). Thin: the router in
functions.api does matching, auth, validation, problem+json errors and the request log.
Importing this module configures logging and connects to nothing."""

import functions_framework
from flask import Request
from werkzeug import Response
from werkzeug.exceptions import HTTPException

from common.logging import configure_logging
from common.probes import install_probes
from common.settings import get_settings
from functions.api.app import ROUTER
from functions.api.errors import framework_error

configure_logging("api", get_settings().log_level)
functions_framework.errorhandler(HTTPException)(framework_error)
install_probes()


@functions_framework.http
def api(request: Request) -> Response:
    return ROUTER.dispatch(request)
