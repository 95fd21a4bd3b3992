"""Timeouts function, triggered every minute by a PingSource (knative/timeouts-ping.yaml).
Thin: functions.timeouts.sweep does the work, common.ping runs and logs it."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import ping_function
from common.events.catalogue import TIMEOUTS
from common.resources import Resources
from functions.timeouts.sweep import sweep

resources = Resources.from_environment()  # started and closed by the server
endpoint = ping_function(TIMEOUTS, sweep, resources)


@aio.http
async def timeouts(request: Request) -> Response:
    return await endpoint(request)
