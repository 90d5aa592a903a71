#!/usr/bin/env bash
# Remove every container and network any shoal labelled (shoal.owner) — for CI, where nothing else
# runs on the machine once the tests end. Not for a machine where a shoal server is serving apps.
set -uo pipefail
export CONTAINERS_CONF="${TMPDIR:-/tmp}/shoal-ci-stack/podman/containers.conf"
ids=$(podman ps -aq --filter label=shoal.owner)
[ -n "$ids" ] && podman rm -f -t 2 $ids >/dev/null
nets=$(podman network ls -q --filter label=shoal.owner)
[ -n "$nets" ] && podman network rm -f $nets >/dev/null
exit 0
