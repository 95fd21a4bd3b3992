"""Notifications function (functions-framework CloudEvents entry point). Thin: the step
runtime parses, deduplicates and publishes; functions.notifications holds the domain code."""

import functions_framework
from cloudevents.http import CloudEvent

from common.bootstrap import event_function
from common.events.catalogue import NOTIFICATIONS
from functions.notifications.handlers import HANDLERS

step = event_function(NOTIFICATIONS, HANDLERS, functions_framework)


@functions_framework.cloud_event
def notifications(event: CloudEvent) -> None:
    step.handle(event)
