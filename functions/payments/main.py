"""Payments function (functions-framework CloudEvents entry point). Thin: the step runtime
parses, deduplicates and publishes; functions.payments holds the domain code."""

import functions_framework
from cloudevents.http import CloudEvent

from common.bootstrap import event_function
from common.events.catalogue import PAYMENTS
from functions.payments.handlers import HANDLERS

step = event_function(PAYMENTS, HANDLERS, functions_framework)


@functions_framework.cloud_event
def payments(event: CloudEvent) -> None:
    step.handle(event)
