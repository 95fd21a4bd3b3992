"""`python -m tools.deploy deploy|undeploy`: what taskfiles/deploy.yml runs.

    python -m tools.deploy deploy --overlay dev --image REGISTRY/order-saga/functions:TAG
    python -m tools.deploy deploy --overlay prod --dry-run     # print the commands only
    python -m tools.deploy undeploy --overlay dev [--purge]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tools import REPO_ROOT
from tools.deploy.manifests import DeployError, render, with_image
from tools.deploy.plan import Tools, deploy_plan, undeploy_plan
from tools.deploy.secret import load_secrets
from tools.deploy.shell import run, script


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("deploy", "undeploy"))
    parser.add_argument("--overlay", default="dev", help="deploy/overlays/<name> (dev, prod)")
    parser.add_argument("--image", default="",
                        help="the image every function and Job run "
                             "(default: the overlay's)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the commands as a shell script; run nothing")
    parser.add_argument("--purge", action="store_true",
                        help="undeploy: also delete the KafkaTopics and the namespace")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the project checkout")
    parser.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"))
    parser.add_argument("--kn", default=os.environ.get("KN", "kn"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tools = Tools(kubectl=args.kubectl, kn=args.kn)
    try:
        docs = render(args.root, args.overlay, tools.kubectl)
        if args.image:
            docs = with_image(docs, args.image)
        secrets = load_secrets(args.root)
        if args.action == "deploy":
            phases = deploy_plan(docs, secrets, os.environ, tools)
        else:
            phases = undeploy_plan(docs, secrets, purge=args.purge, tools=tools)
        if args.dry_run:
            image = args.image or "the overlay's image"
            sys.stdout.write(script(phases, header=(
                f"task {args.action} (overlay {args.overlay}, {image}): dry run, nothing "
                "was run.",)))
            return 0
        return run(phases)
    except DeployError as exc:
        print(f"{args.action}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
