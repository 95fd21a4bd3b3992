"""The cases `saga bench-micro` measures: each a workload (`module:function`, run by child)
and how many operations it times by default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    workload: str  # "module:function" under tools.bench.micro.workloads
    # The default N: enough that what N operations cost only once (a garbage collection
    # pass, a few hundred thousand instructions) is small against N of them.
    iterations: int
    what: str


CASES: tuple[Case, ...] = (
    Case("log-line", "log_line:step_line", 3000,
         "one step line, log_event (10 fields, as StepRuntime.handle writes it)"),
    Case("delivery", "delivery:deliveries", 1000,
         "one delivery in event_endpoint (no-op handler, binary mode, ASGI on uvloop)"),
    Case("jwt-repeated", "jwt:repeated_token", 2000,
         "verify_token, the same HS256 token again"),
    Case("jwt-new", "jwt:new_tokens", 200, "verify_token, a token not seen before"),
)
BY_NAME = {case.name: case for case in CASES}
