"""Operator tools behind `saga status | replay | trace | dlq | logs | send` (the CLI modules
in tools/cli only parse arguments and print): context (where things are: the settings, a
local runtime's state file, the manifests), kafka_admin (consumer groups and offsets),
orders (an order id or its short prefix), and one module per command. They work against
any Kafka and PostgreSQL the settings name, not only the local runtime's."""
