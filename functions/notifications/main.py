"""Notifications function (functions-framework, served over ASGI: common/serving). Thin: the
step runtime parses, deduplicates and publishes; functions.notifications holds the domain code."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import event_function
from common.events.catalogue import NOTIFICATIONS
from common.resources import Resources
from functions.notifications.handlers import HANDLERS

resources = Resources.from_environment()  # started and closed by the server
endpoint = event_function(NOTIFICATIONS, HANDLERS, resources)


@aio.http
async def notifications(request: Request) -> Response:
    return await endpoint(request)
