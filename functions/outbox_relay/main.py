"""Outbox-relay function, triggered every minute by a PingSource
(knative/outbox-relay-ping.yaml). Thin: functions.outbox_relay.drain does the work."""

import functions_framework
from cloudevents.http import CloudEvent

from common.events.catalogue import OUTBOX_RELAY
from common.ping import bootstrap, run_ping
from functions.outbox_relay.drain import drain

bootstrap(OUTBOX_RELAY, functions_framework)


@functions_framework.cloud_event
def outbox_relay(event: CloudEvent) -> None:
    run_ping(event, OUTBOX_RELAY, drain)
