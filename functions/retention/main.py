"""Retention function, triggered every ten minutes by a PingSource
(knative/retention-ping.yaml). Thin: functions.retention.sweep does the work, common.ping
runs and logs it."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import ping_function
from common.events.catalogue import RETENTION
from common.resources import Resources
from functions.retention.sweep import sweep

resources = Resources.from_environment()  # started and closed by the server
endpoint = ping_function(RETENTION, sweep, resources)


@aio.http
async def retention(request: Request) -> Response:
    return await endpoint(request)
