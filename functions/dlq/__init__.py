"""Dead letters: stores every event a KafkaSource gave up on, with Knative's error
extensions, so `saga dlq` can list and re-drive them."""
