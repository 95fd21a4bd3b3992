"""Dead-letter function: the KafkaSource on saga.dead-letters delivers here. Thin:
functions.dlq.store does the work. Accepts any event type, and keeps even a letter that is
no valid CloudEvent (see store.py)."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from common.events.catalogue import DLQ
from common.logging import configure_logging
from common.resources import Resources
from common.serving.event_server import event_endpoint
from functions.dlq.store import handle_dead_letter, raw_data, store_unparsed

resources = Resources.from_environment()  # started and closed by the server
configure_logging(DLQ, resources.settings.log_level)
# A dead letter can be as large as any Kafka record (the steps refuse bodies over 256 KiB,
# and those refusals land here): a 413 would lose it, as this topic has no DLQ of its own.
endpoint = event_endpoint(
    lambda event, headers, body: handle_dead_letter(resources, event,
                                                    raw_data(event, headers, body)),
    resources, max_body=8 * 1024 * 1024,
    on_malformed=lambda headers, body, why: store_unparsed(resources, headers, body,
                                                           why))


@aio.http
async def dlq(request: Request) -> Response:
    return await endpoint(request)
