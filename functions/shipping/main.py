"""Shipping function (functions-framework CloudEvents entry point). Thin: the step runtime
parses, deduplicates and publishes; functions.shipping holds the domain code."""

import functions_framework
from cloudevents.http import CloudEvent

from common.bootstrap import event_function
from common.events.catalogue import SHIPPING
from functions.shipping.handlers import HANDLERS

step = event_function(SHIPPING, HANDLERS, functions_framework)


@functions_framework.cloud_event
def shipping(event: CloudEvent) -> None:
    step.handle(event)
