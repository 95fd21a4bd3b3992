"""Knative Eventing, emulated from the manifests: each KafkaSource a consumer that delivers
its records to the sink function by Knative's rules (kafka_source, partitions, offset_gaps,
record_delivery, http_event, dead_letters), each PingSource a cron ticker (ping_source);
both POST through delivery and http_client. Importing it starts nothing."""
