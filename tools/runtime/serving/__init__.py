"""Knative Serving, emulated from the manifests: each Service a function process started
with the runtime and again on demand after it scaled to zero (supervisor,
function_process, output), forked from a zygote that has the libraries imported (starter,
zygote, zygote_client) or spawned fresh (children), running entrypoint. Importing it starts
nothing."""
