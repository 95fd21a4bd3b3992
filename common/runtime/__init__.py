"""The local runtime: `./taskw up` runs the whole system on one machine from the same
manifests that go to the cluster (DESIGN.md section 7).

knative/*.yaml and kafka-sources/*.yaml are read into typed specs (manifests,
manifest_kinds, specs); each Knative Service becomes a functions-framework process that
scales to zero (processes, supervisor, spawn, output); each KafkaSource a consumer that
delivers records with Knative's rules (dispatcher, partitions, source_delivery, delivery,
httpclient, deadletter); each PingSource a cron ticker (pingsource, cron). up ties them
together (with recovery, state, startup); bench measures dispatch throughput. Importing
this package starts nothing.
"""
