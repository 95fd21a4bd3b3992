"""Outbox-relay function, triggered every minute by a PingSource
(knative/outbox-relay-ping.yaml). Thin: functions.outbox_relay.drain does the work."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.bootstrap import ping_function
from common.events.catalogue import OUTBOX_RELAY
from common.resources import Resources
from functions.outbox_relay.drain import drain

resources = Resources.from_environment()  # started and closed by the server
endpoint = ping_function(OUTBOX_RELAY, drain, resources)


@aio.http
async def outbox_relay(request: Request) -> Response:
    return await endpoint(request)
