#!/usr/bin/env bash
# Compare two builds in one run of the benchmark suite (bench/README.md,
# "Comparing two builds"): the server built from REV ("before") and the one
# built from the working tree ("after") run side by side on loopback, each
# in its own process with its own data directory, and the suite measures
# both in the same rounds.
#
#   scripts/bench-compare.sh REV [authnzbench flags...]
#
# Environment: SERVER_ENV adds settings to both servers (e.g.
# "AUTHNZERVER_HASHNICE=19"); the suite's flags follow REV.
set -euo pipefail
rev=${1:?usage: scripts/bench-compare.sh REV [authnzbench flags...]}
shift
top=$(git rev-parse --show-toplevel)
cd "$top"
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	git worktree remove --force "$work/src" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

git worktree add --detach -q "$work/src" "$rev"
(cd "$work/src" && go build -o "$work/before" ./cmd/authnzerver)
go build -o "$work/after" ./cmd/authnzerver
go build -o "$work/authnzbench" ./bench/cmd/authnzbench

key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_')

start() { # name binary: starts it on a free loopback port; its URL in $started
	local dir="$work/data-$1"
	mkdir -p "$dir"
	env -i PATH="$PATH" HOME="$dir" AUTHNZERVER_SECRET="$key" AUTHNZERVER_DATADIR="$dir" \
		AUTHNZERVER_LISTEN=127.0.0.1 AUTHNZERVER_PORT=0 AUTHNZERVER_RATELIMITS=none \
		AUTHNZERVER_MAXSESSIONSPERUSER=-1 AUTHNZERVER_MAXAPIKEYSPERUSER=-1 \
		${SERVER_ENV:-} "$2" >"$work/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		# The server's shell may not have made its log yet: under set -e a
		# failed sed would end the script, so no log is no URL yet.
		started=$(sed -n 's|^authnzerver listening on \(http://[^ ]*/\).*|\1|p' "$work/$1.log" 2>/dev/null || true)
		if [ -n "$started" ]; then
			return
		fi
		sleep 0.2
	done
	echo "server $1 did not start; its log:" >&2
	cat "$work/$1.log" >&2
	exit 1
}

start before "$work/before"
before=$started
start after "$work/after"
after=$started
echo "before: $rev at $before; after: working tree at $after" >&2
AUTHNZERVER_SECRET="$key" "$work/authnzbench" -url "$after" -against "before=$before" "$@"
