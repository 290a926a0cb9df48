#!/usr/bin/env bash
# Three authnzerver nodes serving as one, on this machine (loopback): a
# throwaway etcd in a temporary directory, the nodes on HTTP ports
# 13431-13433 and cluster ports 7101-7103, all on the PostgreSQL database
# AUTHNZERVER_AUTHDB names (it must exist; the schema is created). Ctrl-C
# stops everything. For real machines, see node-a.env and
# docs/operations.md, "Running several nodes".
#
#   AUTHNZERVER_AUTHDB=postgres://me:pw@127.0.0.1:5432/authnz deploy/cluster/three-nodes.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${AUTHNZERVER_AUTHDB:?set AUTHNZERVER_AUTHDB to a postgres:// URL}"
command -v etcd >/dev/null || { echo "needs etcd (Debian: apt-get install etcd-server)" >&2; exit 1; }
make -s build
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$work"' EXIT
etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23790 \
	--advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
	--initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster default=http://127.0.0.1:23800 \
	>"$work/etcd.log" 2>&1 &
# Every node needs the same secret and PII salt.
bin/authnzerver keygen >"$work/secret"
bin/authnzerver keygen >"$work/piisalt"
for i in 1 2 3; do
	mkdir -p "$work/node$i"
	AUTHNZERVER_CLUSTER=127.0.0.1:23790 \
	AUTHNZERVER_NODEADDR=127.0.0.1:710$i \
	AUTHNZERVER_PORT=1343$i \
	AUTHNZERVER_DATADIR="$work/node$i" \
	AUTHNZERVER_SECRET="$work/secret" \
	AUTHNZERVER_PIISALT="$work/piisalt" \
	AUTHNZERVER_BASEDIR="$work" \
		bin/authnzerver 2>&1 | sed "s/^/node$i: /" &
done
echo "nodes on http://127.0.0.1:13431, :13432, :13433 (secret in $work/secret); Ctrl-C stops them" >&2
wait
