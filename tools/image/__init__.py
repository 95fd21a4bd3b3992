"""The one image (Dockerfile), built and run without Docker: buildah builds it on a Debian
base that mmdebstrap makes (base.py; no registry but the package ones is needed), and its
processes run from its own read-only filesystem with the user, working directory, command
and environment a Kubernetes node would give them (container.py, rootfs.py, process.py).

`python -m tools.image` (./taskw image) builds it and prints its facts; tests/image runs
every function and Job of the manifests from it. Importing this package starts nothing.
"""
