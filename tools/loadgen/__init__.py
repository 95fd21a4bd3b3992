"""Proof under load and faults: the load generator (`saga load`), the invariant check (`saga
check`) and the fault injector (`saga chaos`); tools/bench measures with them. Modules:
invariants (one SQL query per rule) and check (runs them, optionally on one run's
customers); mix (the outcome scenarios), population (a run's SKUs and customers), load
(drives the API like customers), tracker (follows the orders in the database), metrics,
records, driver (one load, start to finish); target (which system), stack and database (a
`saga up` and a PostgreSQL of a run's own); faults and tcpproxy (kills, a restart, a broker
cut), chaos. Importing it starts nothing."""
