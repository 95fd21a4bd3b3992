"""Timeouts function, triggered every minute by a PingSource (knative/timeouts-ping.yaml).
Thin: functions.timeouts.sweep does the work, common.ping runs and logs it."""

import functions_framework
from cloudevents.http import CloudEvent

from common.events.catalogue import TIMEOUTS
from common.ping import bootstrap, run_ping
from functions.timeouts.sweep import sweep

bootstrap(TIMEOUTS, functions_framework)


@functions_framework.cloud_event
def timeouts(event: CloudEvent) -> None:
    run_ping(event, TIMEOUTS, sweep)
