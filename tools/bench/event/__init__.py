"""`saga bench-event` (`./taskw bench:event`): what one delivered event costs in CPU, per
step function and for the api's POST /orders, three ways: **alone**, the handler in this
process (inprocess); **served**, the function as the runtime serves it, the events POSTed
one at a time over a keep-alive connection (served); **in the stack**, from a `saga bench`
results file (instack). Alone and served feed happy-path orders through the chain (chain),
each stage the events the one before emitted, on a PostgreSQL and broker of their own
(world); run ties them together, report prints and writes the figures."""
