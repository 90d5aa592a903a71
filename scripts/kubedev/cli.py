"""The command line of ``scripts/kube-dev-cluster``.

    kube-dev-cluster up DIR        start a cluster; writes DIR/kubeconfig and DIR/registry (host:port)
    kube-dev-cluster down DIR      stop and remove everything ``up`` started for DIR
    kube-dev-cluster status DIR    which daemons run (JSON)
    kube-dev-cluster image DIR NAME[:TAG] [--busybox] [--file SRC:DEST]... [--entrypoint JSON] [--cmd JSON]
                                   push a FROM-scratch image to DIR's registry; prints REGISTRY/NAME@sha256:...

Needs root and Debian's etcd-server, containerd, runc, containernetworking-plugins, docker-registry,
busybox-static and gcc. Environment: SHOAL_KUBE_BINARIES (a dir or .tar.xz of the Kubernetes 1.20.2
programs), SHOAL_CACHE_DIR (default ~/.cache/shoal), SHOAL_KUBE_TIMEOUT (seconds per wait, default 180).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubedev import cluster, teardown
from kubedev.procs import ClusterError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kube-dev-cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a cluster in DIR")
    up.add_argument("dir", type=Path)
    up.add_argument("--keep-on-failure", action="store_true", help="leave a failed cluster for inspection")
    sub.add_parser("down", help="remove the cluster in DIR").add_argument("dir", type=Path)
    sub.add_parser("status", help="show the cluster in DIR").add_argument("dir", type=Path)
    image = sub.add_parser("image", help="push a FROM-scratch image to DIR's registry")
    image.add_argument("dir", type=Path)
    image.add_argument("reference", help="NAME[:TAG] inside the registry")
    image.add_argument("--busybox", action="store_true", help="include static busybox and its applets in /bin")
    image.add_argument("--file", action="append", default=[], metavar="SRC:DEST")
    image.add_argument("--entrypoint", type=json.loads, default=[], metavar="JSON")
    image.add_argument("--cmd", type=json.loads, default=[], metavar="JSON")
    image.add_argument("--env", action="append", default=[], metavar="K=V")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            seconds = cluster.up(args.dir, keep_on_failure=args.keep_on_failure)
            print(f"cluster up in {seconds:.1f} s: KUBECONFIG={args.dir.resolve() / 'kubeconfig'}, "
                  f"registry {(args.dir / 'registry').read_text().strip()}", flush=True)
        elif args.command == "down":
            found = teardown.down(args.dir)
            print("cluster removed" if found else f"no cluster in {args.dir}", flush=True)
        elif args.command == "status":
            print(json.dumps(cluster.status(args.dir), indent=2))
        else:
            files = {dest: Path(src) for src, _, dest in (f.partition(":") for f in args.file)}
            print(cluster.push_image(args.dir, args.reference, files, args.busybox, args.entrypoint, args.cmd,
                                     args.env))
    except ClusterError as exc:
        print(f"kube-dev-cluster: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
