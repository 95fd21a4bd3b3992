"""Payments function (functions-framework, served over ASGI: common/serving). Thin: the
step runtime parses, deduplicates and publishes; functions.payments holds the domain code."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import event_function
from common.events.catalogue import PAYMENTS
from common.resources import Resources
from functions.payments.handlers import HANDLERS, STORE

resources = Resources.from_environment()  # started and closed by the server
endpoint = event_function(PAYMENTS, HANDLERS, resources, STORE)


@aio.http
async def payments(request: Request) -> Response:
    return await endpoint(request)
