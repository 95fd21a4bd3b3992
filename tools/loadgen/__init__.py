"""Proof under load, faults and attack: the load generator (`saga load`), the
invariant check (`saga check`), the benchmark with its PostgreSQL bound (`saga bench`) and
the fault injector (`saga chaos`). Small modules; importing this package starts nothing.

    invariants  the SQL of every invariant, one query per rule, each naming violating rows
    check       runs them on any database, optionally scoped to one run's customers
    mix         the outcome scenarios and how a --mix string weighs them
    population  the run's own SKUs and customers, set up through the public API
    load        drives the API like customers; records submit and terminal times
    tracker     follows the run's orders in the database (statuses, terminal times)
    metrics     percentiles, throughput over time
    procstats   CPU and peak RSS of every process of the stack
    logstats    per-function handling time and events/s from the ECS logs
    pgbound     the PostgreSQL bound: the saga's transactions under pgbench
    stack       starts a `saga up` (or attaches to a running one)
    bench       orchestration of `saga bench`
    faults      SIGKILLs, a PostgreSQL restart, a broker cut (tcpproxy)
    chaos       orchestration of `saga chaos`
    plot        the PNG
"""
