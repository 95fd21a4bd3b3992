"""Running the system on Knative: the probe endpoints every function serves, and the
`task deploy` machinery that turns the manifests in knative/ and kafka-sources/ into
kubectl and kn commands (DESIGN.md section 7, docs/deploy.md).

Nothing here is imported by a function at run time except `common.probes`; the rest
is operator tooling, run as `python -m tools.deploy`.
"""
