"""The local runtime: `./taskw up` runs the whole system on one machine from the same
manifests that go to the cluster (docs/architecture.md, "Running locally").

knative/*.yaml and kafka-sources/*.yaml are read into typed specs (manifests,
manifest_kinds, specs); each Knative Service becomes a functions-framework process that
starts with the runtime (initial scale) and scales to zero (processes, supervisor, output),
forked from a zygote that has the libraries imported (starter, zygote, zygote_client,
launch, spawn); each KafkaSource a consumer that delivers records with Knative's rules
(dispatcher, partitions, source_delivery, delivery, httpclient, deadletter) and can be
paused through the control port (control); each PingSource a cron ticker (pingsource,
cron). up ties them together (with recovery, state, startup); bench measures dispatch
throughput. Importing this package starts nothing.
"""
