"""`saga bench-micro` (`./taskw bench:micro`): instructions per operation of the hot paths'
small pieces under callgrind, which do not depend on the machine's load. Each case
(cases) runs a workload (workloads/, through child) in a process of its own under
`valgrind --tool=callgrind` twice, with 0 and with N operations after the same warm-up
(callgrind); run takes the difference over N, report prints and writes the figures."""
