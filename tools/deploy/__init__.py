"""Running the system on Knative: the `task deploy` machinery that turns the manifests in
knative/ and kafka-sources/ into kubectl and kn commands (docs/deploy.md). Operator tooling,
run as `python -m tools.deploy`; no function imports it.
"""
