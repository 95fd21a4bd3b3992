"""The local runtime: `./taskw up` runs the whole system on one machine from the manifests
that go to the cluster (docs/architecture.md, "Running locally"). Its rooms: eventing (the
KafkaSources and PingSources), serving (the function processes), and `up` with what it
runs on (phases, seed, recovery, state, control, stopping, detached); console, logtail and
proctitle serve them all. The manifests it runs are read by tools/manifests. Importing
this package starts nothing."""
