"""Inventory function (functions-framework, served over ASGI: common/serving). Thin: the
step runtime parses, deduplicates and publishes; functions.inventory holds the domain code."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import event_function
from common.events.catalogue import INVENTORY
from common.resources import Resources
from functions.inventory.handlers import HANDLERS, STORE

resources = Resources.from_environment()  # started and closed by the server
endpoint = event_function(INVENTORY, HANDLERS, resources, STORE)


@aio.http
async def inventory(request: Request) -> Response:
    return await endpoint(request)
