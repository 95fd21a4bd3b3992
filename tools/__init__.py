"""Everything a person runs and that is never deployed: the `saga` CLI, the local runtime,
embedded infrastructure, operator tools, load/bench/chaos, the demo and the deploy helpers
(docs/architecture.md, "Layout"). The image holds none of it."""

from pathlib import Path

# The project's checkout: manifests, migrations and the functions are read from here.
REPO_ROOT = Path(__file__).resolve().parents[1]
