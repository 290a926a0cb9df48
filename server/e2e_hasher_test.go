package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// The hasher under faults, floods and shutdown, with the real hash worker
// process (`authnzerver hash-worker` of the real binary): a fault is a 503
// with Retry-After and never a wrong password or a counted failure (issue
// 14 item 3), one client cannot take every hasher slot (item 6), and the
// worker process does not outlive the server (item 11).

// hashServer is an in-process server whose hashes run in a worker process.
type hashServer struct {
	t   *testing.T
	srv *server.Server
	c   *client.Client
}

// startHashServer starts a server whose hash worker process is command, with
// cheap Argon2 parameters, rate limits off and the extra env.
func startHashServer(t *testing.T, command []string, extra map[string]string) *hashServer {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to find the hash worker process")
	}
	env := map[string]string{
		"AUTHNZERVER_AUTHDB":         t.TempDir(),
		"AUTHNZERVER_PORT":           "0",
		"AUTHNZERVER_LISTEN":         "127.0.0.1",
		"AUTHNZERVER_SECRET":         crashKey,
		"AUTHNZERVER_PIISALT":        "hasher-test-salt",
		"AUTHNZERVER_ADMIN_EMAIL":    servertest.AdminEmail,
		"AUTHNZERVER_ADMIN_PASSWORD": servertest.AdminPassword,
		"AUTHNZERVER_SHARDS":         "4",
		"AUTHNZERVER_RATELIMITS":     "none",
		"AUTHNZERVER_HASHISOLATION":  "process",
	}
	for k, v := range extra {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	hp := servertest.CheapHash
	srv, err := server.Start(cfg, server.Options{
		Logger:            slog.New(slog.DiscardHandler),
		Getenv:            getenv,
		HashParams:        &hp,
		HashWorkerCommand: command,
	})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	c, err := client.New("http://"+srv.Addr.String()+"/", crashKey)
	if err != nil {
		t.Fatal(err)
	}
	// Longer than the hasher's own 10 s wait, which a stall test sits out.
	c.WithHTTPClient(&http.Client{Timeout: 2 * time.Minute})
	return &hashServer{t: t, srv: srv, c: c}
}

// do sends one request from client address ip; a transport error fails the
// test.
func (s *hashServer) do(ip, reqType string, body map[string]any) *client.Response {
	s.t.Helper()
	r, err := s.try(ip, reqType, body)
	if err != nil {
		s.t.Fatalf("%s: %v", reqType, err)
	}
	return r
}

// try sends one request from client address ip (safe from any goroutine).
func (s *hashServer) try(ip, reqType string, body map[string]any) (*client.Response, error) {
	b := map[string]any{"client_ipaddr": ip}
	for k, v := range body {
		b[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return s.c.Request(ctx, reqType, b)
}

// newUser signs up an active, verified user and returns its id.
func (s *hashServer) newUser(email, password string) int64 {
	s.t.Helper()
	r := s.do("127.0.0.1", "user-new", map[string]any{"full_name": "Test User", "email": email, "password": password})
	id, ok := r.Int("user_id")
	if r.StatusCode != 200 || !r.Success || !ok {
		s.t.Fatalf("user-new: %d %v %q", r.StatusCode, r.Success, r.FailureReason)
	}
	r = s.do("127.0.0.1", "internal-user-edit", map[string]any{"target_userid": id, "update_dict": map[string]any{"is_active": true, "email_verified": true, "user_role": "authenticated"}})
	if r.StatusCode != 200 || !r.Success {
		s.t.Fatalf("internal-user-edit: %d %q", r.StatusCode, r.FailureReason)
	}
	return id
}

// loginBody returns the body of a user-login on a new anonymous session.
func (s *hashServer) loginBody(email, password string) map[string]any {
	s.t.Helper()
	r := s.do("127.0.0.1", "session-new", map[string]any{
		"ip_address": "10.1.2.3", "user_agent": "hasher-test", "user_id": nil,
		"expires": time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000000"), "extra_info_json": nil,
	})
	if r.StatusCode != 200 || !r.Success {
		s.t.Fatalf("session-new: %d %q", r.StatusCode, r.FailureReason)
	}
	return map[string]any{"session_token": r.Str("session_token"), "email": email, "password": password}
}

// want503 fails the test unless r is the plain busy answer with Retry-After.
func want503(t *testing.T, what string, r *client.Response) {
	t.Helper()
	if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.FailureReason, "server is busy") {
		t.Errorf("%s: status %d, Retry-After %q, success %v, failure_reason %q; want 503 busy with Retry-After",
			what, r.StatusCode, r.Header.Get("Retry-After"), r.Success, r.FailureReason)
	}
}

// hashWorkers returns the pids of the hash worker processes whose parent is
// ppid.
func hashWorkers(t testing.TB, ppid int) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so parse after
		// its closing parenthesis.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(ppid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte("hash-worker")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitHashWorker waits until ppid has exactly one hash worker process and
// returns its pid.
func waitHashWorker(t *testing.T, ppid int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := hashWorkers(t, ppid)
		if len(pids) == 1 {
			return pids[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("hash worker processes of %d: %v; want one", ppid, pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopHashWorker stops (SIGSTOP) the one hash worker process of this test
// process and returns the function that lets it run again; that also runs
// when the test ends.
func stopHashWorker(t *testing.T) (resume func()) {
	t.Helper()
	pid := waitHashWorker(t, os.Getpid())
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() { once.Do(func() { syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(resume)
	return resume
}

// waitGone waits until pid no longer exists (was reaped).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); processExists(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still exists", pid)
		}
	}
}

// processExists reports whether pid is a process, a zombie included.
func processExists(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestHasherFaultIs503: while the hash worker process cannot run, every
// request that needs a hash is answered 503 with Retry-After, the right
// password is never "wrong", and the faults count as no failure: with
// USERLOCKTRIES=2, three faulted logins do not lock the user, and a login
// once the worker runs again succeeds.
func TestHasherFaultIs503(t *testing.T) {
	bin := buildBinary(t)
	broken := filepath.Join(t.TempDir(), "worker-broken")
	// The worker process dies at once while the flag file exists, and is
	// the real one otherwise.
	command := []string{"/bin/sh", "-c", `if [ -e "$1" ]; then exit 1; fi; exec "$2" hash-worker`, "sh", broken, bin}
	s := startHashServer(t, command, map[string]string{"AUTHNZERVER_USERLOCKTRIES": "2"})
	const email, password = "fault@example.org", "a-long-and-correct-password-1"
	s.newUser(email, password)

	if err := os.WriteFile(broken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// End the worker that runs now; the next ones die at once.
	pid := waitHashWorker(t, os.Getpid())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	for i := range 3 {
		want503(t, fmt.Sprintf("login %d with the right password", i+1), s.do("10.9.9.9", "user-login", s.loginBody(email, password)))
	}
	want503(t, "user-passcheck-nosession", s.do("10.9.9.9", "user-passcheck-nosession", map[string]any{"email": email, "password": password}))
	want503(t, "user-new", s.do("10.9.9.9", "user-new", map[string]any{"full_name": "Other", "email": "other@example.org", "password": password}))

	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	r := s.do("10.9.9.9", "user-login", s.loginBody(email, password))
	if r.StatusCode != 200 || !r.Success {
		t.Fatalf("login once the worker runs: %d %v %q %q; want success (faults are no failures)", r.StatusCode, r.Success, r.FailureReason, r.Messages)
	}
}

// TestHasherStallIs503: a stopped hash worker process makes a login wait
// for the pool's timeout (10 s) and then answers 503 with Retry-After, not
// 500; once it runs again, logins succeed.
func TestHasherStallIs503(t *testing.T) {
	bin := buildBinary(t)
	s := startHashServer(t, []string{bin, "hash-worker"}, nil)
	const email, password = "stall@example.org", "a-long-and-correct-password-2"
	s.newUser(email, password)
	resume := stopHashWorker(t)
	want503(t, "login while the worker is stopped", s.do("10.9.9.9", "user-login", s.loginBody(email, password)))
	resume()
	r := s.do("10.9.9.9", "user-login", s.loginBody(email, password))
	if r.StatusCode != 200 || !r.Success {
		t.Fatalf("login once the worker runs: %d %v %q; want success", r.StatusCode, r.Success, r.FailureReason)
	}
}

// TestSignalReapsHashWorker: SIGTERM or SIGINT of the real binary ends its
// hash worker process and waits for it before exiting, even when the worker
// is stopped and would never read the end of its input: no orphan and no
// zombie is left.
func TestSignalReapsHashWorker(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to find the hash worker process")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		name    string
		sig     syscall.Signal
		stopped bool
	}{
		{"SIGTERM idle worker", syscall.SIGTERM, false},
		{"SIGTERM stopped worker", syscall.SIGTERM, true},
		{"SIGINT stopped worker", syscall.SIGINT, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProc(t, bin, t.TempDir(), "AUTHNZERVER_HASHISOLATION=process")
			defer p.kill()
			// The first start hashes the superuser's password in the worker.
			pid := waitHashWorker(t, p.cmd.Process.Pid)
			defer syscall.Kill(pid, syscall.SIGKILL) // if the test fails
			if tc.stopped {
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.done:
			case <-time.After(time.Minute):
				t.Fatalf("server did not exit on %v\nstderr:\n%s", tc.sig, p.stderr)
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit code %d; want 0\nstderr:\n%s", code, p.stderr)
			}
			if processExists(pid) {
				t.Errorf("hash worker process %d outlived the server", pid)
			}
		})
	}
}

// TestHasherFairShare: while one source floods password checks beyond the
// hasher pool's capacity, it holds at most its share of the pool, and a
// password check from another source is still admitted and answered.
// The worker process is stopped meanwhile, so that the
// admitted checks stay in the pool and the admissions are all decided
// before any finishes.
func TestHasherFairShare(t *testing.T) {
	bin := buildBinary(t)
	s := startHashServer(t, []string{bin, "hash-worker"}, map[string]string{"AUTHNZERVER_WORKERS": "2", "AUTHNZERVER_HASHQUEUE": "8"})
	const email, password = "fair@example.org", "a-long-and-correct-password-3"
	s.newUser(email, password)
	resume := stopHashWorker(t)
	h := s.srv.Hasher
	const flood = 20 // twice the pool's capacity of 2 workers + 8 queued
	type answer struct {
		r   *client.Response
		err error
	}
	floodAnswers := make(chan answer, flood)
	for i := range flood {
		go func() {
			r, err := s.try("10.0.0.1", "user-passcheck-nosession", map[string]any{"email": fmt.Sprintf("nobody%d@example.org", i), "password": "wrong password"})
			floodAnswers <- answer{r, err}
		}()
	}
	// Every flood request is either answered (refused) or holds a slot.
	var refused []answer
	deadline := time.Now().Add(time.Minute)
	for len(refused)+h.InFlight() < flood {
		select {
		case a := <-floodAnswers:
			refused = append(refused, a)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("flood: %d answered, %d in the pool; want %d in all", len(refused), h.InFlight(), flood)
		}
	}
	admitted := h.InFlight()
	for _, a := range refused {
		if a.err != nil {
			t.Fatal(a.err)
		}
		want503(t, "flood request beyond the share", a.r)
	}
	if share := h.Capacity() / 4; admitted > share {
		t.Errorf("one source holds %d of the pool's %d slots; want at most %d", admitted, h.Capacity(), share)
	}

	// Another source's check is admitted (it waits in the pool) rather than
	// refused, and answered once the worker runs.
	other := make(chan answer, 1)
	go func() {
		r, err := s.try("10.0.0.2", "user-passcheck-nosession", map[string]any{"email": email, "password": password})
		other <- answer{r, err}
	}()
	var got answer
	for waiting := true; waiting; {
		select {
		case got = <-other:
			waiting = false
		case <-time.After(10 * time.Millisecond):
			waiting = h.InFlight() <= admitted
		}
		if time.Now().After(deadline) {
			t.Fatal("the other source's request was neither answered nor admitted")
		}
	}
	resume()
	if got.r == nil && got.err == nil {
		got = <-other
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.r.StatusCode != 200 || !got.r.Success {
		t.Errorf("other source during the flood: status %d, success %v, failure_reason %q; want a successful password check", got.r.StatusCode, got.r.Success, got.r.FailureReason)
	}
	for range admitted {
		if a := <-floodAnswers; a.err != nil || a.r.StatusCode != 200 || a.r.Success {
			t.Errorf("admitted flood request: %+v; want a failed password check", a)
		}
	}
}

// BenchmarkHasherUnderFlood is a bounded loopback load run, not a test: it
// starts the real binary with the default Argon2 parameters and its hash
// worker process, and reports the password checks (Argon2 verifications)
// per second that 4 legitimate clients get alone (idle), and then while 64
// more connections flood wrong password checks as fast as they are
// answered. AUTHNZERVER_FLOOD_SOURCES sets how many client addresses the
// flood uses (default 1; 64 gives every connection its own), and
// AUTHNZERVER_FLOOD_SECONDS the length of each phase (default 15).
//
//	go test -run '^$' -bench HasherUnderFlood -benchtime 1x ./server/
func BenchmarkHasherUnderFlood(b *testing.B) {
	sources, _ := strconv.Atoi(os.Getenv("AUTHNZERVER_FLOOD_SOURCES"))
	sources = max(sources, 1)
	secs, _ := strconv.Atoi(os.Getenv("AUTHNZERVER_FLOOD_SECONDS"))
	phase := time.Duration(max(secs, 15)) * time.Second
	const legit, flood = 4, 64

	bin, err := buildBinaryOnce()
	if err != nil {
		b.Fatal(err)
	}
	port := 0
	{
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"AUTHNZERVER_AUTHDB="+b.TempDir(),
		"AUTHNZERVER_PORT="+strconv.Itoa(port),
		"AUTHNZERVER_LISTEN=127.0.0.1",
		"AUTHNZERVER_SECRET="+crashKey,
		"AUTHNZERVER_PIISALT=flood-salt",
		"AUTHNZERVER_RATELIMITS=none",
		"AUTHNZERVER_ADMIN_EMAIL="+servertest.AdminEmail,
		"AUTHNZERVER_ADMIN_PASSWORD="+servertest.AdminPassword,
		"AUTHNZERVER_LOGLEVEL=warn",
	)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	c, err := client.New(fmt.Sprintf("http://127.0.0.1:%d/", port), crashKey)
	if err != nil {
		b.Fatal(err)
	}
	c.WithHTTPClient(&http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * (legit + flood)}})
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port)); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("server did not start")
		}
	}
	const password = "a-long-and-correct-password-4"
	for i := range legit {
		r, err := c.Request(ctx, "user-new", map[string]any{"client_ipaddr": "127.0.0.1", "full_name": "Legit", "email": fmt.Sprintf("legit%d@example.org", i), "password": password})
		if err != nil || !r.Success {
			b.Fatalf("user-new: %v %+v", err, r)
		}
		id, _ := r.Int("user_id")
		r, err = c.Request(ctx, "internal-user-edit", map[string]any{"client_ipaddr": "127.0.0.1", "target_userid": id, "update_dict": map[string]any{"is_active": true, "email_verified": true, "user_role": "authenticated"}})
		if err != nil || !r.Success {
			b.Fatalf("internal-user-edit: %v %+v", err, r)
		}
	}

	// run drives the clients for one phase and counts answers by kind.
	type counts struct{ ok, busy, other atomic.Int64 }
	run := func(withFlood bool) (legitC, floodC *counts) {
		legitC, floodC = &counts{}, &counts{}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		count := func(cs *counts, r *client.Response, err error) {
			switch {
			case err == nil && r.StatusCode == 200:
				cs.ok.Add(1)
			case err == nil && r.StatusCode == 503:
				cs.busy.Add(1)
			default:
				cs.other.Add(1)
			}
		}
		for i := range legit {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := map[string]any{"client_ipaddr": fmt.Sprintf("10.1.0.%d", i+1), "email": fmt.Sprintf("legit%d@example.org", i), "password": password}
				for {
					select {
					case <-stop:
						return
					default:
					}
					r, err := c.Request(ctx, "user-passcheck-nosession", body)
					if err == nil && r.StatusCode == 200 && !r.Success {
						err = fmt.Errorf("password check failed: %q", r.FailureReason)
					}
					count(legitC, r, err)
					if err == nil && r.StatusCode == 503 {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}()
		}
		if withFlood {
			for i := range flood {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ip := fmt.Sprintf("10.2.%d.%d", (i%sources)/250, (i%sources)%250+1)
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						r, err := c.Request(ctx, "user-passcheck-nosession", map[string]any{"client_ipaddr": ip, "email": fmt.Sprintf("flood%d-%d@example.org", i, n), "password": "wrong password"})
						count(floodC, r, err)
					}
				}()
			}
		}
		time.Sleep(phase)
		close(stop)
		wg.Wait()
		return legitC, floodC
	}
	// cpu returns the CPU seconds the server and its hash worker used so far.
	cpu := func() (front, worker float64) {
		front = cpuSeconds(cmd.Process.Pid)
		for _, pid := range hashWorkers(b, cmd.Process.Pid) {
			worker += cpuSeconds(pid)
		}
		return front, worker
	}
	for b.Loop() {
		f0, w0 := cpu()
		idle, _ := run(false)
		f1, w1 := cpu()
		legitF, floodF := run(true)
		f2, w2 := cpu()
		s := phase.Seconds()
		b.ReportMetric((f1-f0)/s, "idle-front-cpu")
		b.ReportMetric((w1-w0)/s, "idle-worker-cpu")
		b.ReportMetric((f2-f1)/s, "flood-front-cpu")
		b.ReportMetric((w2-w1)/s, "flood-worker-cpu")
		b.ReportMetric(float64(idle.ok.Load())/s, "idle-verifies/s")
		b.ReportMetric(float64(legitF.ok.Load()+floodF.ok.Load())/s, "flood-verifies/s")
		b.ReportMetric(float64(legitF.ok.Load())/s, "flood-legit-ok/s")
		b.ReportMetric(float64(legitF.busy.Load())/s, "flood-legit-503/s")
		b.ReportMetric(float64(floodF.busy.Load())/s, "flood-shed/s")
		b.ReportMetric(float64(floodF.ok.Load())/s, "flood-admitted/s")
		b.Logf("idle: %d ok %d busy %d other; flood: legit %d ok %d busy %d other, flood %d ok %d busy %d other (%d sources, %v per phase)",
			idle.ok.Load(), idle.busy.Load(), idle.other.Load(),
			legitF.ok.Load(), legitF.busy.Load(), legitF.other.Load(),
			floodF.ok.Load(), floodF.busy.Load(), floodF.other.Load(), sources, phase)
	}
}

// cpuSeconds returns the user and system CPU time of process pid (0 if it
// cannot be read), from /proc/pid/stat in clock ticks of 1/100 s.
func cpuSeconds(pid int) float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	// After the comm: state is field 3, utime 14 and stime 15.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}
