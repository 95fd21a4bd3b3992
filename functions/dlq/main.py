"""Dead-letter function: the KafkaSource on saga.dead-letters delivers here. Thin:
functions.dlq.store does the work. Accepts any event type (see store.py)."""

import flask
import functions_framework
from cloudevents.http import CloudEvent

from common.events.catalogue import DLQ
from common.logging import configure_logging
from common.settings import get_settings
from common.step import install_error_handlers
from functions.dlq.store import handle_dead_letter, raw_data

configure_logging(DLQ, get_settings().log_level)
install_error_handlers(functions_framework)
# A dead letter can be as large as any Kafka record (the steps refuse bodies over 256 KiB,
# and those refusals land here): a 413 would lose it, as this topic has no DLQ of its own.
flask.current_app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024


@functions_framework.cloud_event
def dlq(event: CloudEvent) -> None:
    handle_dead_letter(event, raw_data(event))
