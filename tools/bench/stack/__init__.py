"""`saga bench` (`./taskw bench`): one measured run of the whole local stack under load
(run), with CPU and RSS of its processes (procstats), per-function handling time from the
ECS logs (logstats), the PostgreSQL bound (pgbound, saga.pgbench), and its results as JSON
and a PNG (report, plot). Importing it starts nothing."""
