"""Measurements, not tests: each asserts nothing and prints (or writes to bench/results/)
figures that docs/benchmarks.md and docs/operations.md quote with their commands. The
whole stack under load (stack: `saga bench`), one event's CPU (event: `saga bench-event`),
instructions per operation of the hot paths' pieces (micro: `saga bench-micro`),
the KafkaSource emulation's throughput (dispatch), its HTTP client against libraries
(http_clients), a cold start in the runtime (coldstart) and from the image
(image_coldstart), `./taskw up` to a healthy API (up), the console's queries (console)."""
