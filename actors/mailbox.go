package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// inlineMailbox is a shard's mailbox. A message posted to an idle shard runs
// at once on the posting goroutine (a request's handler, or the shard that
// forwards a session check), so the common case costs no goroutine hand-off
// either way; anything queued behind it is handed to a goroutine of its own
// after inlineBudget messages, so a poster never drains other requests'
// messages for long (docs/design.md, "Request path: `session-exists`").
// Messages still run one at a time, in the order posted: the actor model is
// unchanged.
type inlineMailbox struct {
	mu        sync.Mutex
	user, sys []any
	head      int // user[head:] are the queued user messages
	running   bool
	suspended bool

	invoker     actor.MessageInvoker
	dispatcher  actor.Dispatcher
	middlewares []actor.MailboxMiddleware

	// dropped, when set, is given every user message that arrives after
	// the actor stopped (protoactor-go drops those silently), so that a
	// caller waiting for an answer gets one; dead says the actor stopped.
	// Both are used by the draining goroutine only.
	dropped func(msg any, sender *actor.PID)
	dead    bool
}

// inlineBudget is how many messages a posting goroutine runs before it hands
// the rest of the queue to a goroutine.
const inlineBudget = 1

// inlineMailboxProducer makes shard mailboxes with the given statistics
// middlewares (the mailbox depth).
func inlineMailboxProducer(mw ...actor.MailboxMiddleware) actor.MailboxProducer {
	return func() actor.Mailbox { return &inlineMailbox{middlewares: mw} }
}

// answeringMailboxProducer is inlineMailboxProducer for actors whose
// messages must each be answered even when the actor has stopped (shard
// grains, which stop when their shard moves): dropped gets those messages.
func answeringMailboxProducer(dropped func(msg any, sender *actor.PID), mw ...actor.MailboxMiddleware) actor.MailboxProducer {
	return func() actor.Mailbox { return &inlineMailbox{middlewares: mw, dropped: dropped} }
}

func (m *inlineMailbox) PostUserMessage(msg any) {
	for _, mw := range m.middlewares {
		mw.MessagePosted(msg)
	}
	m.mu.Lock()
	if m.head > 0 && len(m.user) == cap(m.user) {
		// Full with run messages at its head: move the queue down
		// rather than grow (a backlog that never empties).
		n := copy(m.user, m.user[m.head:])
		clear(m.user[n:])
		m.user, m.head = m.user[:n], 0
	}
	m.user = append(m.user, msg)
	m.post()
}

func (m *inlineMailbox) PostSystemMessage(msg any) {
	for _, mw := range m.middlewares {
		mw.MessagePosted(msg)
	}
	m.mu.Lock()
	m.sys = append(m.sys, msg)
	m.post()
}

// post runs the queue on this goroutine if nobody does (m.mu held on
// entry, released here).
func (m *inlineMailbox) post() {
	if m.running {
		m.mu.Unlock()
		return
	}
	m.running = true
	m.mu.Unlock()
	m.drain(inlineBudget)
}

func (m *inlineMailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker, m.dispatcher = invoker, dispatcher
}

func (m *inlineMailbox) Start() {
	for _, mw := range m.middlewares {
		mw.MailboxStarted()
	}
}

func (m *inlineMailbox) UserMessageCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.user) - m.head
}

// drain runs queued messages, system ones first, until the queue is empty
// or budget messages have run (0: no bound); then it hands what is left to
// a goroutine. Only one goroutine drains at a time (running).
func (m *inlineMailbox) drain(budget int) {
	for n := 0; ; n++ {
		m.mu.Lock()
		if budget > 0 && n == budget && (len(m.sys) > 0 || (!m.suspended && len(m.user) > m.head)) {
			m.mu.Unlock()
			go m.drain(0)
			return
		}
		var msg any
		system := false
		switch {
		case len(m.sys) > 0:
			msg, m.sys, system = m.sys[0], m.sys[1:], true
		case !m.suspended && len(m.user) > m.head:
			msg = m.user[m.head]
			m.user[m.head] = nil
			m.head++
			if m.head == len(m.user) {
				// Empty: the array is reused by the next post (no
				// allocation a message), unless a backlog grew it.
				m.head = 0
				if cap(m.user) > 256 {
					m.user = nil
				} else {
					m.user = m.user[:0]
				}
			}
		default:
			m.running = false
			m.mu.Unlock()
			for _, mw := range m.middlewares {
				mw.MailboxEmpty()
			}
			return
		}
		m.mu.Unlock()
		m.invoke(msg, system)
	}
}

// invoke runs one message; a panic goes to the actor's supervisor, as with
// protoactor-go's own mailbox.
func (m *inlineMailbox) invoke(msg any, system bool) {
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	if !system {
		if m.dead {
			_, inner, sender := actor.UnwrapEnvelope(msg)
			m.dropped(inner, sender)
			for _, mw := range m.middlewares {
				mw.MessageReceived(msg)
			}
			return
		}
		m.invoker.InvokeUserMessage(msg)
		if _, poison := msg.(*actor.PoisonPill); poison && m.dropped != nil {
			m.dead = true
		}
		for _, mw := range m.middlewares {
			mw.MessageReceived(msg)
		}
		return
	}
	switch msg.(type) {
	case *actor.SuspendMailbox:
		m.mu.Lock()
		m.suspended = true
		m.mu.Unlock()
	case *actor.ResumeMailbox:
		m.mu.Lock()
		m.suspended = false
		m.mu.Unlock()
	default:
		m.invoker.InvokeSystemMessage(msg)
		if _, stop := msg.(*actor.Stop); stop && m.dropped != nil {
			m.dead = true
		}
	}
	for _, mw := range m.middlewares {
		mw.MessageReceived(msg)
	}
}
