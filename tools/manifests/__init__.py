"""What the repository's manifests say, as typed values: knative/*.yaml and
kafka-sources/*.yaml (loader, kinds, fields, specs), the KafkaTopics of
kafka-sources/topics/ (topics), and the two syntaxes they use for time (durations, cron).
Reads files only: importing it starts nothing."""
