"""How ./taskw and `saga up` handle processes and signals, with neither a database nor a
broker: they run once (the Tansu tier), not again in the Kafka tier as tests/integration
and tests/e2e do."""
