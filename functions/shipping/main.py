"""Shipping function (functions-framework, served over ASGI: common/serving). Thin: the
step runtime parses, deduplicates and publishes; functions.shipping holds the domain code."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import event_function
from common.events.catalogue import SHIPPING
from common.resources import Resources
from functions.shipping.handlers import HANDLERS, STORE

resources = Resources.from_environment()  # started and closed by the server
endpoint = event_function(SHIPPING, HANDLERS, resources, STORE)


@aio.http
async def shipping(request: Request) -> Response:
    return await endpoint(request)
