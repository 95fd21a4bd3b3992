"""The api function (functions-framework HTTP entry point). Thin: the router in
functions.api does matching, auth, validation, problem+json errors and the request log.
Importing this module configures logging and connects to nothing."""

import functions_framework
from flask import Request
from werkzeug import Response
from werkzeug.exceptions import HTTPException

from common.logging import configure_logging
from common.serving.wsgi import install_probes
from functions.api.app import ROUTER
from functions.api.errors import framework_error
from functions.api.resources import ApiResources

resources = ApiResources.from_environment()  # started and closed by the server
configure_logging("api", resources.settings.log_level)
functions_framework.errorhandler(HTTPException)(framework_error)
install_probes(resources)


@functions_framework.http
def api(request: Request) -> Response:
    return ROUTER.dispatch(request, resources)
