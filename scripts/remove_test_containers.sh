#!/usr/bin/env bash
# Remove every container and network any shoal labelled (shoal.owner) — for CI, where nothing else
# runs on the machine once the tests end. Not for a machine where a shoal server is serving apps.
set -uo pipefail
export CONTAINERS_CONF="${TMPDIR:-/tmp}/shoal-ci-stack/podman/containers.conf"
ids=$(podman ps -aq --filter label=shoal.owner)
[ -n "$ids" ] && podman rm -f -t 2 $ids >/dev/null
nets=$(podman network ls -q --filter label=shoal.owner)
[ -n "$nets" ] && podman network rm -f $nets >/dev/null
# shoal's isolation rules (comment "shoal:<owner>:<network>") and, once empty, its chain.
if command -v iptables >/dev/null && iptables -w 10 -n -L SHOAL-ISOLATION >/dev/null 2>&1; then
  iptables -w 10 -F SHOAL-ISOLATION
  iptables -w 10 -D FORWARD -j SHOAL-ISOLATION 2>/dev/null
  iptables -w 10 -X SHOAL-ISOLATION 2>/dev/null
fi
exit 0
