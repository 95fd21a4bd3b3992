"""Operator tools behind `saga status | replay | trace | dlq` (the CLI modules in
tools/cli only parse arguments and print).

context resolves where things are (settings, a running local runtime's state file, the
manifests); kafka_admin wraps the consumer-group and offset calls; orders turns an order
id or its short prefix into the id (resolve_order_id); status, replay, trace and dlq are
one command each; coldstart_bench and up_bench measure the figures in
docs/operations.md. Everything here works against any Kafka and PostgreSQL the settings
name, not only the local runtime's.
"""
