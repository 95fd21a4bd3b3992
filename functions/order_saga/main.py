"""Order-saga function (functions-framework CloudEvents entry point). Thin: the step runtime
parses, deduplicates and publishes; functions.order_saga holds the domain code."""

import functions_framework
from cloudevents.http import CloudEvent

from common.bootstrap import event_function
from common.events.catalogue import ORDER_SAGA
from functions.order_saga.handlers import HANDLERS

step = event_function(ORDER_SAGA, HANDLERS, functions_framework)


@functions_framework.cloud_event
def order_saga(event: CloudEvent) -> None:
    step.handle(event)
