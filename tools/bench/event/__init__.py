"""`saga bench-event` (`./taskw bench:event`): what one delivered event costs in CPU, three
ways, per step function and for the api's POST /orders:

- **alone**: the step's handler in this process (StepRuntime.handle; the api through its
  Flask test client), on a real PostgreSQL and broker, its ECS line formatted;
- **served**: the same function served as the local runtime serves it (forked from the
  zygote, functions-framework's server), the events POSTed one at a time over a keep-alive
  connection; the CPU of the server's process tree;
- **in the stack**: from a `saga bench` results file (process CPU over events handled).

Alone and served run the same happy-path orders through the chain (order.created ->
inventory -> order-saga -> payments -> ... -> notifications), each stage fed the events the
stage before emitted, read back from the outbox. Modules: world (PostgreSQL, broker, the
shop), chain (the stages and their CPU meters), inprocess, served, instack, report, run.
"""
