"""Order-saga function (functions-framework, served over ASGI: common/event_server.py). Thin:
the step runtime parses, deduplicates and publishes; functions.order_saga holds the domain
code."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import event_function
from common.events.catalogue import ORDER_SAGA
from functions.order_saga.handlers import HANDLERS

endpoint = event_function(ORDER_SAGA, HANDLERS)


@aio.http
async def order_saga(request: Request) -> Response:
    return await endpoint(request)
