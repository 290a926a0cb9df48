# authnzerver: the two commands a new user needs are `make run` and `make test`.
GO      ?= go
BIN     := bin/authnzerver
PKGS    := ./...

.PHONY: all build run test race fuzz fuzz-short bench bench-deps gobench lint crash-long ci clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/authnzerver

run: build
	./$(BIN)

# Every test: lint, the unit and end-to-end tests of every package under
# the race detector (cluster/e2e runs real nodes, etcd and PostgreSQL), the
# core's flow tests once more on a two-node in-process cluster (without the
# race detector: several protoactor-go remotes in one process race on
# gRPC's logger), and each fuzz target for a few seconds.
test: lint
	$(GO) test -race -shuffle=on -count=1 $(PKGS)
	AUTHNZ_ACTORS_CLUSTER=1 $(GO) test -shuffle=on -count=1 ./actors/
	$(MAKE) fuzz-short

race:
	$(GO) test -race -shuffle=on -count=1 $(PKGS)

FUZZTIME ?= 2s
fuzz-short:
	@./scripts/fuzz-all.sh $(FUZZTIME)

fuzz:
	@./scripts/fuzz-all.sh 60s

# A short run of the benchmark suite (bench/README.md): table, JSON and HTML
# in bench/results/ (not committed). `make gobench` runs the Go benchmarks.
# BENCHDRIVER=wrk or both measures with wrk too ("The wrk driver" in
# bench/README.md; `make bench-deps` installs it).
BENCHFLAGS ?= -d 3s -runs 3 -n 100000
BENCHDRIVER ?= go
bench:
	@mkdir -p bench/results
	$(GO) run ./bench/cmd/authnzbench -driver $(BENCHDRIVER) $(BENCHFLAGS) -q -json bench/results/latest.json -html bench/results/latest.html | tee bench/results/latest.txt

# The suite's external load generator (-driver wrk|both): wrk, from Debian's
# package. The suite never installs anything itself; this target does (root).
bench-deps:
	@command -v wrk >/dev/null && wrk --version 2>&1 | head -1 || { apt-get update && apt-get install -y wrk; }

gobench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=5 $(PKGS) | tee bench.txt

# The crash test's long form: hundreds of SIGKILL/restart cycles of the real
# binary under concurrent durable writes (CRASH_CYCLES to change; the seed
# is printed, AUTHNZERVER_CRASH_SEED=n replays it).
CRASH_CYCLES ?= 300
crash-long:
	AUTHNZERVER_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -count=1 -timeout=0 -v -run='^TestCrash(Sync|Async)$$' ./server/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)

ci: test

clean:
	rm -rf bin bench.txt

# The cluster failure tests' long form (cluster/e2e, issue 16): more kill -9
# cycles (CLUSTER_CYCLES), longer load, a longer etcd outage and two
# rolling-restart rounds; the nodes are built with the race detector.
CLUSTER_CYCLES ?= 6
.PHONY: cluster-long
cluster-long:
	AUTHNZ_CLUSTER_LONG=1 AUTHNZ_CLUSTER_CYCLES=$(CLUSTER_CYCLES) $(GO) test -count=1 -timeout=0 -v -run='^TestCluster' ./cluster/e2e/
