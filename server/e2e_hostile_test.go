package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// Hostile clients: slow senders, too many connections, huge headers and
// bodies, and overload. Bounds on time here are generous liveness bounds,
// never performance assertions.

func hostOf(ts *servertest.Server) string {
	return strings.TrimSuffix(strings.TrimPrefix(ts.URL, "http://"), "/")
}

// readStatus reads one HTTP answer's status from conn (0 when the server
// closed the connection without answering).
func readStatus(conn net.Conn, limit time.Duration) (int, error) {
	conn.SetReadDeadline(time.Now().Add(limit))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF || strings.Contains(err.Error(), "reset") {
			return 0, nil
		}
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestSlowlorisDisconnected: a client that sends its headers a byte at a
// time, slower than the read timeout allows, is disconnected, and other
// clients are served meanwhile.
func TestSlowlorisDisconnected(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_READTIMEOUT", "1"), servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	conn, err := net.Dial("tcp", hostOf(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nX-Slow: " + strings.Repeat("a", 200) + "\r\n\r\n"
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		for i := 0; i < len(req); i++ {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				closed <- time.Since(start)
				return
			}
			time.Sleep(50 * time.Millisecond) // the whole request would take ~13 s
		}
		closed <- -1
	}()
	// Meanwhile, other clients are served.
	for i := 0; i < 5; i++ {
		if r := ts.Do("session-exists", map[string]any{"session_token": "x"}); r.StatusCode != 200 {
			t.Errorf("other client during slowloris: status %d; want 200", r.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The slow client is cut off: the server closes (or answers an error
	// and closes) long before it finishes sending.
	status, err := readStatus(conn, 30*time.Second)
	if err != nil {
		t.Fatalf("slow client was not disconnected: %v", err)
	}
	if status == 200 {
		t.Errorf("slow client was served (status 200); want a disconnect")
	}
	select {
	case d := <-closed:
		if d < 0 {
			t.Errorf("slow client sent its whole request; want it cut off by the read timeout")
		}
	case <-time.After(30 * time.Second):
		t.Errorf("slow client's writes still accepted after 30 s")
	}
	t.Logf("slow client disconnected after %v (status %d)", time.Since(start).Round(time.Millisecond), status)
}

// TestMaxConnsRefusesBeyondCap: with AUTHNZERVER_MAXCONNS=n, connection n+1
// is refused (503) while n are open, and served once they close.
func TestMaxConnsRefusesBeyondCap(t *testing.T) {
	const n = 4
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_MAXCONNS", fmt.Sprint(n)), servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	var held []net.Conn
	for range n {
		c, err := net.Dial("tcp", hostOf(ts))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("POST / HTTP/1.1\r\nHost: localhost\r\n")) // and then nothing
		held = append(held, c)
	}
	refused := false
	deadline := time.Now().Add(10 * time.Second)
	for !refused && time.Now().Before(deadline) {
		c, err := net.Dial("tcp", hostOf(ts))
		if err != nil {
			refused = true // refusing the connection outright is also a refusal
			break
		}
		c.Write([]byte("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"))
		status, _ := readStatus(c, 10*time.Second)
		c.Close()
		refused = status == 503 || status == 0
		if refused {
			t.Logf("connection %d: status %d (0: closed)", n+1, status)
		}
		if !refused {
			time.Sleep(20 * time.Millisecond) // the held connections may not be accepted yet
		}
	}
	if !refused {
		t.Errorf("connection %d was served while %d were open; want 503", n+1, n)
	}
	for _, c := range held {
		c.Close()
	}
	// Once they are gone, the server serves again.
	ok := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !ok; {
		resp, err := http.Get(strings.TrimSuffix(ts.URL, "/") + "/health")
		if err == nil {
			resp.Body.Close()
			ok = resp.StatusCode == 200
		}
		if !ok {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ok {
		t.Errorf("server does not serve after the held connections closed")
	}
}

// TestHugeHeaderRefused: a header block larger than the read buffer is
// refused with an error status, and the server keeps serving.
func TestHugeHeaderRefused(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	conn, err := net.Dial("tcp", hostOf(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b bytes.Buffer
	b.WriteString("POST / HTTP/1.1\r\nHost: localhost\r\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "X-Pad-%d: %s\r\n", i, strings.Repeat("p", 100))
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	go conn.Write(b.Bytes()) // the server may stop reading half-way
	status, err := readStatus(conn, 30*time.Second)
	if err != nil {
		t.Fatalf("huge header: %v", err)
	}
	if status != 0 && (status < 400 || status >= 500) {
		t.Errorf("huge header: status %d; want a 4xx refusal or a closed connection", status)
	}
	t.Logf("huge header: status %d (0: closed)", status)
	if r := ts.Do("session-exists", map[string]any{"session_token": "x"}); r.StatusCode != 200 {
		t.Errorf("after a huge header: status %d; want 200", r.StatusCode)
	}
}

// TestHugeBodyRefusedEarly: a body announced larger than the limit is
// refused with 413 before it is sent, so a client cannot make the server
// buffer a gigabyte.
func TestHugeBodyRefusedEarly(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "none"), servertest.Env("AUTHNZERVER_MAXBODYBYTES", "65536"))
	conn, err := net.Dial("tcp", hostOf(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", 1<<30)
	conn.Write(bytes.Repeat([]byte("A"), 1024)) // and never the rest
	status, err := readStatus(conn, 30*time.Second)
	if err != nil {
		t.Fatalf("huge body: no answer: %v", err)
	}
	if status != 413 {
		t.Errorf("huge body: status %d; want 413", status)
	}
	// A chunked body that grows past the limit is refused too.
	conn2, err := net.Dial("tcp", hostOf(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	go func() {
		fmt.Fprintf(conn2, "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := bytes.Repeat([]byte("B"), 8192)
		for i := 0; i < 64; i++ {
			if _, err := fmt.Fprintf(conn2, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return
			}
		}
		fmt.Fprintf(conn2, "0\r\n\r\n")
	}()
	status, err = readStatus(conn2, 30*time.Second)
	if err != nil {
		t.Fatalf("huge chunked body: %v", err)
	}
	t.Logf("huge chunked body: status %d (0: closed)", status)
	if status != 413 && status != 0 {
		t.Errorf("huge chunked body: status %d; want 413 or a closed connection", status)
	}
}

// TestShardQueueBoundSheds: when a shard's mailbox is deeper than
// AUTHNZERVER_MAXSHARDQUEUE, requests are refused at once with 503 instead
// of queueing; once it drains they are served again.
func TestShardQueueBoundSheds(t *testing.T) {
	const bound = 8
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_MAXSHARDQUEUE", fmt.Sprint(bound)), servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	core := ts.Srv.Core
	// Hold shard 0 (test only: shard operations never block), then queue
	// more messages behind it than the bound.
	release := make(chan struct{})
	<-actors.HoldShard(core, 0, release)
	for range 3 * bound {
		actors.HoldShard(core, 0, release)
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for core.MailboxDepths()[0] <= bound {
		if time.Now().After(deadline) {
			t.Fatalf("mailbox depth %d never exceeded %d", core.MailboxDepths()[0], bound)
		}
		time.Sleep(time.Millisecond)
	}
	// Any request now meets the overloaded verdict (sampled every ms).
	time.Sleep(5 * time.Millisecond)
	r := ts.Do("session-exists", map[string]any{"session_token": "x"})
	if r.StatusCode != 503 {
		t.Errorf("overloaded: status %d; want 503", r.StatusCode)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("overloaded: no Retry-After header")
	}
	close(release)
	deadline = time.Now().Add(10 * time.Second)
	for {
		r := ts.Do("session-exists", map[string]any{"session_token": "x"})
		if r.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the queue drained: status %d", r.StatusCode)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowReaderDisconnected: a client that sends requests but never reads
// the answers cannot hold a connection (and its goroutine) past the write
// timeout, and other clients are served meanwhile.
func TestSlowReaderDisconnected(t *testing.T) {
	ts := servertest.Start(t,
		servertest.Env("AUTHNZERVER_WRITETIMEOUT", "1"),
		servertest.Env("AUTHNZERVER_READTIMEOUT", "120"),
		servertest.Env("AUTHNZERVER_IDLETIMEOUT", "120"),
		servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	// A tiny receive window makes the server's writes block soon.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", hostOf(ts))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	front := ts.Srv.Front
	// Pipeline requests without reading until our own writes stall (the
	// server stopped reading because its writes are blocked) or a bound.
	batch := bytes.Repeat([]byte("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"), 100)
	writerDone := make(chan int, 1)
	go func() {
		sent := 0
		conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		for sent < 200_000 {
			if _, err := conn.Write(batch); err != nil {
				break
			}
			sent += 100
		}
		writerDone <- sent
	}()
	// The connection is open while the server is stuck writing to it...
	for deadline := time.Now().Add(10 * time.Second); front.OpenConnections() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pipelining client's connection never showed as open")
		}
	}
	// (A one-off connection, so that only the stalled one stays open.)
	other, err := net.Dial("tcp", hostOf(ts))
	if err != nil {
		t.Fatal(err)
	}
	other.Write([]byte("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
	if status, err := readStatus(other, 10*time.Second); status != 200 {
		t.Errorf("other client while a reader stalls: status %d (%v); want 200", status, err)
	}
	other.Close()
	// ...and is closed by the server soon after the write timeout, although
	// the client never closes it and the read and idle timeouts are long.
	start := time.Now()
	for front.OpenConnections() > 0 {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%d connections still open 20 s into a stalled read; want the write timeout (1 s) to close it", front.OpenConnections())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("stalled reader disconnected after %v; requests sent %d", time.Since(start).Round(time.Millisecond), <-writerDone)
}
