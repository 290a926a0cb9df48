package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// recordingInvoker runs messages as an actor would and checks the mailbox's
// promise: one message at a time, each sender's messages in order, none
// lost.
type recordingInvoker struct {
	t       *testing.T
	inside  atomic.Int32
	mu      sync.Mutex
	last    map[int]int // sender -> last sequence number seen
	count   atomic.Int64
	blockAt int64 // when >0, the message with this count waits for release
	release chan struct{}
}

type seqMsg struct{ sender, seq int }

func (r *recordingInvoker) InvokeUserMessage(m any) {
	if r.inside.Add(1) != 1 {
		r.t.Error("two messages of one mailbox ran at once")
	}
	defer r.inside.Add(-1)
	msg := m.(seqMsg)
	r.mu.Lock()
	if prev, ok := r.last[msg.sender]; ok && msg.seq != prev+1 {
		r.t.Errorf("sender %d: message %d after %d", msg.sender, msg.seq, prev)
	}
	r.last[msg.sender] = msg.seq
	r.mu.Unlock()
	if r.count.Add(1) == r.blockAt {
		<-r.release
	}
}

func (r *recordingInvoker) InvokeSystemMessage(any) {}

func (r *recordingInvoker) EscalateFailure(reason any, _ any) { r.t.Errorf("failure: %v", reason) }

func newRecordingMailbox(t *testing.T) (*inlineMailbox, *recordingInvoker) {
	inv := &recordingInvoker{t: t, last: map[int]int{}, release: make(chan struct{})}
	m := inlineMailboxProducer()().(*inlineMailbox)
	m.RegisterHandlers(inv, actor.NewDefaultDispatcher(300))
	m.Start()
	return m, inv
}

func waitCount(t *testing.T, inv *recordingInvoker, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for inv.count.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages run; want %d (a message was lost)", inv.count.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// Many senders at once: every message runs, one at a time, each sender's in
// the order sent.
func TestInlineMailboxOrderAndExclusion(t *testing.T) {
	m, inv := newRecordingMailbox(t)
	const senders, each = 8, 2000
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.PostUserMessage(seqMsg{sender: s, seq: i})
			}
		}()
	}
	wg.Wait()
	waitCount(t, inv, senders*each)
}

// A message posted to an idle mailbox runs on the posting goroutine, before
// the post returns; one posted behind a busy one is queued and run by the
// goroutine the mailbox hands its queue to, so the poster does not wait.
func TestInlineMailboxRunsIdlePostsInline(t *testing.T) {
	m, inv := newRecordingMailbox(t)
	m.PostUserMessage(seqMsg{sender: 0, seq: 0})
	if inv.count.Load() != 1 {
		t.Fatalf("a post to an idle mailbox returned before its message ran")
	}
	inv.blockAt = 2
	go m.PostUserMessage(seqMsg{sender: 0, seq: 1}) // runs inline, then blocks
	for inv.count.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		m.PostUserMessage(seqMsg{sender: 1, seq: 0})
		m.PostUserMessage(seqMsg{sender: 1, seq: 1})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("posting to a busy mailbox blocked")
	}
	if n := m.UserMessageCount(); n != 2 {
		t.Errorf("%d messages queued behind the busy one; want 2", n)
	}
	close(inv.release)
	waitCount(t, inv, 4)
}

// Suspended, a mailbox runs system messages only; resumed, it runs what
// waited.
func TestInlineMailboxSuspends(t *testing.T) {
	m, inv := newRecordingMailbox(t)
	m.PostSystemMessage(&actor.SuspendMailbox{})
	m.PostUserMessage(seqMsg{sender: 0, seq: 0})
	if inv.count.Load() != 0 {
		t.Fatal("a suspended mailbox ran a user message")
	}
	m.PostSystemMessage(&actor.ResumeMailbox{})
	waitCount(t, inv, 1)
}
