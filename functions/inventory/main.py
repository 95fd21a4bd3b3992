"""Inventory function (functions-framework, served over ASGI: common/event_server.py). Thin:
the step runtime parses, deduplicates and publishes; functions.inventory holds the domain
code."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import event_function
from common.events.catalogue import INVENTORY
from functions.inventory.handlers import HANDLERS

endpoint = event_function(INVENTORY, HANDLERS)


@aio.http
async def inventory(request: Request) -> Response:
    return await endpoint(request)
