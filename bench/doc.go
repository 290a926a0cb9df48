// Package bench is authnzerver's benchmark suite: a load generator that
// speaks the real wire protocol (Fernet-sealed JSON envelopes over HTTP
// keep-alive connections) to any authnzerver-compatible server on this
// machine, the named scenarios ("Scenarios" in bench/README.md), three
// baselines measured in the same rounds (a bare fasthttp "ok", our codec
// with a minimal answer, and the codec stick: fernet-go and encoding/json
// with a full session-exists answer), and the table and JSON reports.
//
// The load generator seals every request body before the measured window
// (re-sealing in the background to stay inside the server's freshness
// window), checks the HTTP status of every answer and fully decrypts a
// sample, and records latency in an HDR histogram: closed loop (fixed
// connections) or open loop (fixed rate, latency from the intended send
// time). Targets are loopback only.
//
// The same figures can be measured by wrk instead, or by both side by side
// (Config.Driver; wrk.go): wrk replays the bodies, sealed just before each
// run, from a generated Lua script, counts every answer's status, and an
// unmeasured check pass on one connection samples answers for the same
// checks.
//
// bench may import everything (it starts our server in process); nothing
// imports bench. Drive and Run may be called from several goroutines; a
// Bodies value is safe for concurrent Get while it refreshes.
package bench
