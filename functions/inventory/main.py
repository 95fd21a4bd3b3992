"""Inventory function (functions-framework CloudEvents entry point). Thin: the step
runtime parses, deduplicates and publishes; functions.inventory holds the domain code."""

import functions_framework
from cloudevents.http import CloudEvent

from common.bootstrap import event_function
from functions.inventory.handlers import HANDLERS

step = event_function("inventory", HANDLERS, functions_framework)


@functions_framework.cloud_event
def inventory(event: CloudEvent) -> None:
    step.handle(event)
