"""`saga bench-retention` (`./taskw bench:retention`): does a step's cost stay flat as the
tables that grow with traffic (inbox, outbox, idempotency keys) grow, and what does the
retention sweep cost while it deletes? Modules: grow (the rows, fast), measure (the event
bench's in-process chain, timed, round trips counted), callgrind (instructions per event),
sweepload (the sweep under load), run, report. docs/benchmarks.md has the figures."""
