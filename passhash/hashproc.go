package passhash

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// An isolated hash worker process.
//
// Argon2 is CPU-bound and x/crypto runs each hash's lanes on p goroutines, so
// in one process a login storm takes every core away from the session checks:
// the Go scheduler has no priorities, and a hash's goroutines hold the
// server's Ps for whole 10 ms time slices. In a child process, the kernel
// schedules the hashes' threads against the front's, and the front's threads,
// which wake for short requests, get a core within a fraction of a
// millisecond (docs/design.md, "The hasher pool"). The pool's admission,
// bound and routing stay in this process; the child only computes.
//
// The child runs at the server's own priority, not below it. Under `nice
// 19` it got only the CPU the rest of the machine left idle: a flood of
// password requests that the front refused with 503 kept the front busy and
// left the worker about 1 % of the CPU, so the few logins admitted timed
// out; any other busy process on the host did the same. At equal priority
// the kernel splits the CPU between the front and the hashes under load.

// Frames on the child's stdin and stdout: a 4-byte big-endian length, then a
// JSON object. Passwords cross the pipe to our own child and nowhere else.

// maxHashFrame bounds a frame: a password of 256 characters and a PHC
// string of at most 512 bytes, with room to spare.
const maxHashFrame = 64 << 10

type hashProcRequest struct {
	ID     uint64     `json:"id"`
	Op     HashOp     `json:"op"`
	Params HashParams `json:"params"`
}

type hashProcReply struct {
	ID          uint64 `json:"id"`
	OK          bool   `json:"ok"`
	PHC         string `json:"phc,omitempty"`
	NeedsRehash bool   `json:"rehash,omitempty"`
	Err         string `json:"err,omitempty"`
	// Stored names a verification's stored-string error (a key of
	// storedHashErrors), so that the parent can tell "this string never
	// matches" from a fault; empty for any other error.
	Stored string `json:"stored,omitempty"`
}

// storedHashErrors are the errors that cross the pipe by name; every other
// error of the child is a fault in the parent.
var storedHashErrors = map[string]error{
	"malformed":   ErrPHCMalformed,
	"bounds":      ErrPHCOutOfBounds,
	"unsupported": ErrPHCUnsupported,
}

// replyOf is the reply the child sends for res.
func replyOf(id uint64, res HashResult) hashProcReply {
	rep := hashProcReply{ID: id, OK: res.OK, PHC: res.PHC, NeedsRehash: res.NeedsRehash}
	if res.Err != nil {
		rep.Err = res.Err.Error()
		for name, sentinel := range storedHashErrors {
			if errors.Is(res.Err, sentinel) {
				rep.Stored = name
				break
			}
		}
	}
	return rep
}

// result is the parent's reading of a reply.
func (rep hashProcReply) result() HashResult {
	res := HashResult{OK: rep.OK, PHC: rep.PHC, NeedsRehash: rep.NeedsRehash}
	switch {
	case rep.Err == "" && rep.Stored == "":
	case storedHashErrors[rep.Stored] != nil:
		res.Err = fmt.Errorf("%w (in the hash worker process: %s)", storedHashErrors[rep.Stored], rep.Err)
	default:
		res.Err = fmt.Errorf("%w: %s", ErrHashProcess, rep.Err)
	}
	return res
}

// ErrHashProcess reports that the hash worker process failed; the next
// operation starts a new one.
var ErrHashProcess = errors.New("passhash: hash worker process failed")

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxHashFrame {
		return fmt.Errorf("passhash: hash frame of %d bytes", len(b))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(append(hdr[:], b...)); err != nil {
		return err
	}
	return nil
}

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxHashFrame {
		return fmt.Errorf("passhash: hash frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// ServeHashWorker is the body of the hash worker process: it computes the
// operations read from r, concurrently, and writes their results to w until
// r ends. The parent bounds how many are in flight.
func ServeHashWorker(r io.Reader, w io.Writer) error {
	br := bufio.NewReader(r)
	var mu sync.Mutex // serialises writes to w
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var req hashProcRequest
		if err := readFrame(br, &req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("passhash: hash worker: read: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep := replyOf(req.ID, computeOp(req.Op, req.Params.withDefaults()))
			mu.Lock()
			defer mu.Unlock()
			_ = writeFrame(w, rep) // a broken pipe means the parent is gone
		}()
	}
}

// computeOp performs one operation in this process.
func computeOp(op HashOp, params HashParams) HashResult {
	if !op.Verify {
		phc, err := hashPassword(params, op.Password, rand.Reader)
		return HashResult{OK: err == nil, PHC: phc, Err: err}
	}
	ok, parsed, err := verifyPassword(op.PHC, op.Password)
	return HashResult{OK: ok, NeedsRehash: ok && parsed.NeedsRehash(params), Err: err}
}

// hashProc is the parent's end: one child process, started on first use
// and again after it fails, serving every worker actor.
//
// Every child started is waited for by its readReplies goroutine, so none is
// left a zombie; one that stalls or answers nonsense is killed, and close
// kills the current one and waits for it, so none outlives the server.
type hashProc struct {
	// Static.
	command []string
	timeout time.Duration

	mu      sync.Mutex // guards the fields below
	child   *hashChild // nil: none running; the next run starts one
	pending map[uint64]chan HashResult
	nextID  uint64
	closed  bool
}

// hashChild is one run of the worker process.
type hashChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed once cmd has been waited for
}

func newHashProc(command []string, nice int, timeout time.Duration) *hashProc {
	return &hashProc{command: niceCommand(command, nice), timeout: timeout, pending: map[uint64]chan HashResult{}}
}

// niceCommand prefixes command with `nice -n n` when n > 0 and nice exists.
// nice sets its own priority and then runs the command, so every thread of
// the worker inherits it (on Linux a priority set from outside would reach
// only one thread).
func niceCommand(command []string, n int) []string {
	if n <= 0 {
		return command
	}
	p, err := exec.LookPath("nice")
	if err != nil {
		return command
	}
	return append([]string{p, "-n", strconv.Itoa(min(n, 19))}, command...)
}

// startLocked starts a child. REQUIRES: p.mu held.
func (p *hashProc) startLocked() error {
	cmd := exec.Command(p.command[0], p.command[1:]...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("passhash: start hash worker: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("passhash: start hash worker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("passhash: start hash worker %q: %w", p.command, err)
	}
	c := &hashChild{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	p.child = c
	go p.readReplies(c, bufio.NewReader(stdout))
	return nil
}

// readReplies delivers the child's replies until its output ends or makes
// no sense, then kills it (a child that sent a bad frame may still be alive),
// waits for it, and fails what is still pending so that no caller waits for
// a dead child.
func (p *hashProc) readReplies(c *hashChild, r io.Reader) {
	for {
		var rep hashProcReply
		if err := readFrame(r, &rep); err != nil {
			break
		}
		p.mu.Lock()
		ch := p.pending[rep.ID]
		delete(p.pending, rep.ID)
		p.mu.Unlock()
		if ch != nil {
			ch <- rep.result()
		}
	}
	_ = c.cmd.Process.Kill() // an error means it is gone already
	_ = c.cmd.Wait()
	close(c.done)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.child == c {
		p.child = nil
		for id, ch := range p.pending {
			ch <- HashResult{Err: ErrHashProcess}
			delete(p.pending, id)
		}
	}
}

func (p *hashProc) run(op HashOp, params HashParams) HashResult {
	ch := make(chan HashResult, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return HashResult{Err: ErrHasherStopped}
	}
	if p.child == nil {
		if err := p.startLocked(); err != nil {
			p.mu.Unlock()
			return HashResult{Err: fmt.Errorf("%w: %w", ErrHashProcess, err)}
		}
	}
	c := p.child
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	err := writeFrame(c.stdin, hashProcRequest{ID: id, Op: op, Params: params})
	if err != nil {
		delete(p.pending, id)
		p.mu.Unlock()
		return HashResult{Err: fmt.Errorf("%w: %w", ErrHashProcess, err)}
	}
	p.mu.Unlock()
	t := time.NewTimer(p.timeout)
	defer t.Stop()
	select {
	case res := <-ch:
		return res
	case <-t.C:
		p.mu.Lock()
		delete(p.pending, id)
		if p.child == c {
			// A child that does not answer in twice the callers' wait is
			// stalled: kill it (readReplies reaps it and fails the rest), so
			// the next operation starts a new one instead of waiting too.
			_ = c.cmd.Process.Kill()
		}
		p.mu.Unlock()
		return HashResult{Err: fmt.Errorf("%w: no answer from the hash worker process in %v", ErrHasherTimeout, p.timeout)}
	}
}

// hashProcReapWait bounds how long close waits for a killed child to be
// reaped; a child that was sent SIGKILL is gone within it.
const hashProcReapWait = 10 * time.Second

// close kills the current child and waits until it has been reaped, so that
// a server that stops leaves no worker process behind, even one that is
// stalled or busy. Run after the workers have finished their jobs, so
// nothing is lost.
func (p *hashProc) close() {
	p.mu.Lock()
	p.closed = true
	c := p.child
	if c != nil {
		_ = c.stdin.Close()
		_ = c.cmd.Process.Kill()
	}
	p.mu.Unlock()
	if c == nil {
		return
	}
	t := time.NewTimer(hashProcReapWait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C: // its output is held open by something else; give up
	}
}
