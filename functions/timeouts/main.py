"""Timeouts function, triggered every minute by a PingSource (knative/timeouts-ping.yaml).
Thin: functions.timeouts.sweep does the work, common.ping runs and logs it."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.events.catalogue import TIMEOUTS
from common.ping import ping_function
from functions.timeouts.sweep import sweep

endpoint = ping_function(TIMEOUTS, sweep)


@aio.http
async def timeouts(request: Request) -> Response:
    return await endpoint(request)
