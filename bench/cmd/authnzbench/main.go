// Command authnzbench runs the authnzerver benchmark suite (bench/README.md)
// against our server started in process, or against any
// authnzerver-compatible server on this machine given by -url and -key.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/authnzerver/authnzerver/bench"
	"github.com/authnzerver/authnzerver/passhash"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "hash-worker" {
		// The isolated Argon2 process of the in-process server.
		if err := passhash.ServeHashWorker(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		return
	}
	if exe, err := os.Executable(); err == nil {
		bench.HashWorkerCommand = []string{exe, "hash-worker"}
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "authnzbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg bench.Config
	var scen, against, jsonPath, htmlPath, cpuProfile string
	var quiet bool
	flag.StringVar(&cfg.URL, "url", "", "external server URL (loopback only); empty starts our server in process")
	flag.StringVar(&cfg.Key, "key", os.Getenv("AUTHNZERVER_SECRET"), "Fernet key of the external server (default $AUTHNZERVER_SECRET)")
	flag.StringVar(&cfg.URL2, "url2", "", "external server with rate limits on, for ratelimit-check")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "external server's pid, for the memory and soak scenarios")
	flag.StringVar(&scen, "scenarios", strings.Join(bench.DefaultScenarios, ","), "comma-separated scenarios to run")
	flag.IntVar(&cfg.Conns, "c", 32, "keep-alive connections per measurement")
	flag.DurationVar(&cfg.Duration, "d", 5*time.Second, "measured window of each run")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "unrecorded warm-up run of each measurement")
	flag.IntVar(&cfg.Runs, "runs", 3, "rounds; figures are medians over them")
	flag.Float64Var(&cfg.Rate, "rate", 0, "open loop at this many requests/s (0: closed loop)")
	flag.IntVar(&cfg.Sample, "sample", 64, "fully decrypt and check one answer in this many")
	flag.IntVar(&cfg.Pool, "pool", 1000, "live sessions for the session scenarios")
	flag.IntVar(&cfg.LoginConns, "login-conns", 16, "connections of the login storm")
	flag.IntVar(&cfg.LoginSessions, "login-sessions", 1000, "fresh sessions made for each login run (bounds it)")
	flag.IntVar(&cfg.MemoryN, "n", 1_000_000, "sessions loaded by the memory scenario")
	flag.DurationVar(&cfg.Soak, "soak", 10*time.Minute, "open-loop run of the soak scenario (not in the default list: -scenarios soak)")
	flag.Float64Var(&cfg.SoakLoad, "soak-load", 0.8, "soak rate as a fraction of the mix's closed-loop maximum (measured for -d first)")
	flag.BoolVar(&cfg.CheapHash, "cheap-hash", false, "in-process servers use tiny Argon2 parameters (not for login figures)")
	flag.IntVar(&cfg.Shards, "shards", 0, "in-process servers: AUTHNZERVER_SHARDS (0: default)")
	flag.StringVar(&cfg.Driver, "driver", "go", "load generator: go (the suite's own), wrk (wrk with pre-sealed bodies; install: make bench-deps) or both, side by side")
	flag.StringVar(&cfg.Wrk, "wrk", "", "wrk binary for -driver wrk|both (default: wrk on $PATH)")
	flag.StringVar(&cfg.WrkCPUs, "wrk-cpus", "", "pin wrk to these CPUs (taskset -c list, e.g. 1); default: wherever the suite runs (a suite under taskset passes its CPUs on)")
	flag.StringVar(&against, "against", "", "comma-separated name=URL of other external servers (same key) measured in the same rounds, side by side (e.g. a build before a change)")
	flag.StringVar(&cfg.Store, "store", "pebble", "store of the in-process server: pebble, postgres (a throwaway PostgreSQL, fsync on) or both (session-check, session-new and login also on PostgreSQL, side by side)")
	flag.IntVar(&cfg.ClusterNodes, "cluster", 3, "node processes of the cluster scenario (-scenarios cluster; bench/README.md)")
	flag.StringVar(&cfg.ServerBin, "server-bin", "", "server binary of the cluster scenario (default: go build from this module)")
	flag.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	flag.StringVar(&htmlPath, "html", "", "also write a self-contained HTML report with charts to this file")
	flag.BoolVar(&quiet, "q", false, "no progress line")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (load generator and in-process server) to this file")
	flag.Parse()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	cfg.Scenarios = strings.Split(scen, ",")
	if against != "" {
		for _, a := range strings.Split(against, ",") {
			name, url, ok := strings.Cut(a, "=")
			if !ok {
				return fmt.Errorf("-against %q: want name=URL", a)
			}
			cfg.Against = append(cfg.Against, bench.Contender{Name: name, URL: url})
		}
	}
	cfg.Log = os.Stderr
	if !quiet {
		cfg.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		rep.WriteTable(os.Stdout)
		if jsonPath != "" {
			if werr := rep.WriteJSON(jsonPath); werr != nil && err == nil {
				err = werr
			}
		}
		if htmlPath != "" {
			if werr := rep.WriteHTML(htmlPath); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}
