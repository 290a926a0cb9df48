package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/wire"
)

// baseline is a loopback fasthttp server started by the suite.
type baseline struct {
	srv *fasthttp.Server
	ln  net.Listener
}

func (b *baseline) close() { _ = b.srv.Shutdown() }

// serveBaseline serves handler on a loopback port as the baseline name,
// with key for its target (empty: the baseline does not speak the
// protocol).
func serveBaseline(name, key string, handler fasthttp.RequestHandler) (*Target, *baseline, error) {
	ln, err := listenLoopback()
	if err != nil {
		return nil, nil, err
	}
	srv := &fasthttp.Server{Handler: handler, Name: name}
	go func() { _ = srv.Serve(ln) }()
	t, err := NewTarget(name, "http://"+ln.Addr().String()+"/", key)
	return t, &baseline{srv: srv, ln: ln}, err
}

func listenLoopback() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen: %w", err)
	}
	return ln, nil
}

// startHello starts the `hello` baseline: fasthttp answering "ok" to every
// request. It prices HTTP on loopback and nothing else.
func startHello() (*Target, *baseline, error) {
	return serveBaseline("hello", "", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
}

// startCodecOnly starts the `codec-only` baseline: our own codec
// (wire.Codec) opens the request (base64, Fernet, JSON envelope) and seals
// a minimal fixed success answer (about 80 bytes) with the request's reqid.
// It prices our codec at its cheapest, with no state and no session_info;
// the targets are stated against codec-stick (stick.go) instead.
func startCodecOnly(key string) (*Target, *baseline, error) {
	codec, err := wire.NewCodec([]string{key}, wire.DefaultMaxAge)
	if err != nil {
		return nil, nil, err
	}
	handler := func(ctx *fasthttp.RequestCtx) {
		plain, err := codec.Open(ctx.PostBody())
		if err != nil {
			ctx.SetStatusCode(fasthttp.StatusUnauthorized)
			return
		}
		var env struct {
			Request string          `json:"request"`
			ReqID   json.RawMessage `json:"reqid"`
			Body    json.RawMessage `json:"body"`
		}
		if json.Unmarshal(plain, &env) != nil || len(env.ReqID) == 0 {
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			return
		}
		out := make([]byte, 0, 128)
		out = append(out, `{"success":true,"response":{"success":true,"messages":[]},"messages":[],"reqid":`...)
		out = append(out, env.ReqID...)
		out = append(out, '}')
		sealed, err := codec.Seal(out)
		if err != nil {
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType("text/plain; charset=UTF-8")
		ctx.SetBody(sealed)
	}
	return serveBaseline("codec-only", key, handler)
}

// Local is our full server started in this process on a temporary data
// directory (loopback, random port).
type Local struct {
	Srv    *server.Server
	Target *Target
	env    map[string]string
	hash   *passhash.HashParams
}

// benchKey is the Fernet key of in-process servers (a fixed test key: the
// servers listen on loopback only and their data is thrown away).
const benchKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// adminPassword is the superuser password of in-process servers.
const adminPassword = "bench-superuser-password-7319"

// LocalOptions configure an in-process server.
type LocalOptions struct {
	DataDir string
	// Env overrides AUTHNZERVER_* variables.
	Env map[string]string
	// CheapHash uses tiny Argon2 parameters (tests); otherwise the real
	// defaults of the configuration.
	CheapHash bool
}

// serverEnv is the settings every server the suite starts shares: loopback,
// the bench key and superuser, no rate limits, and no per-user session
// cap (the session scenarios check a pool of, by default, 1000 sessions of
// the superuser).
func serverEnv() map[string]string {
	return map[string]string{
		"AUTHNZERVER_LISTEN":             "127.0.0.1",
		"AUTHNZERVER_SECRET":             benchKey,
		"AUTHNZERVER_PIISALT":            "bench-pii-salt",
		"AUTHNZERVER_ADMIN_EMAIL":        "admin@bench.example.org",
		"AUTHNZERVER_ADMIN_PASSWORD":     adminPassword,
		"AUTHNZERVER_RATELIMITS":         "none",
		"AUTHNZERVER_MAXSESSIONSPERUSER": "-1",
	}
}

// StartLocal starts our server in this process.
func StartLocal(o LocalOptions) (*Local, error) {
	env := serverEnv()
	env["AUTHNZERVER_AUTHDB"] = o.DataDir
	env["AUTHNZERVER_PORT"] = "0"
	for k, v := range o.Env {
		env[k] = v
	}
	l := &Local{env: env}
	if o.CheapHash {
		hp := passhash.HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}
		l.hash = &hp
	}
	if err := l.start(); err != nil {
		return nil, err
	}
	return l, nil
}

// HashWorkerCommand, when set, starts the isolated Argon2 process of
// in-process servers (as the authnzerver binary does); authnzbench sets it
// to itself. Nil hashes in the benchmark's own process.
var HashWorkerCommand []string

func (l *Local) start() error {
	getenv := func(k string) string { return l.env[k] }
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		return fmt.Errorf("bench: server config: %w", err)
	}
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.Start(cfg, server.Options{Logger: lg, Getenv: getenv, HashParams: l.hash, Stderr: io.Discard, HashWorkerCommand: HashWorkerCommand})
	if err != nil {
		return fmt.Errorf("bench: start server: %w", err)
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		return fmt.Errorf("bench: %w", err)
	}
	l.Srv = srv
	l.Target, err = NewTarget("authnzerver", "http://"+srv.Addr.String()+"/", benchKey)
	return err
}

// Restart closes the server and starts it again on the same data
// directory, as an operator's restart would (the state is loaded back).
func (l *Local) Restart() error {
	if err := l.Close(); err != nil {
		return err
	}
	return l.start()
}

// Close stops the server.
func (l *Local) Close() error {
	if l.Srv == nil {
		return nil
	}
	err := l.Srv.Close()
	l.Srv = nil
	return err
}

// rssBytes reads VmRSS of process pid (0: this process) from /proc.
func rssBytes(pid int) (int64, error) {
	p := "/proc/self/status"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("bench: read RSS: %w", err)
	}
	return parseVmRSS(data)
}

// parseVmRSS finds the "VmRSS:  1234 kB" line of a /proc status file.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "VmRSS:") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, "VmRSS:"))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: odd VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: odd VmRSS line %q: %w", line, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("bench: no VmRSS line")
}
