package actors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/authnzerver/authnzerver/shard"
)

// The core's vocabulary: every thing a shard can be asked to do is a named
// operation, a struct of plain data fields (no closures, no channels, no
// pointers into shard state) whose behaviour lives here, in the core, not in
// the caller. Because an operation is data, it can be encoded
// ([EncodeOp]/[DecodeOp]) and later sent to a shard on another node; the
// reply target is not part of the operation: in this process it is the
// channel of the envelope that carries it (opMsg), across nodes it will be
// the sender's PID.
//
// An operation names the shard that owns it (Route), or is sent to every
// shard ([AskAll]). Its apply method runs on the shard's goroutine: it may
// read and change the shard, must not block, and returns what the caller
// gets, the mutation records to persist, and an error.
//
// docs/design.md, "The core's vocabulary", lists the operations.

// Op is one named operation of the core on the shard that owns it.
type Op interface {
	// Route is the routing hash of the record the operation is about.
	Route() shard.Route
	broadcastOp
}

// broadcastOp is an operation that can run on any shard: the part of Op that
// [AskAll] needs.
type broadcastOp interface {
	// apply runs the operation on s at now.
	apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error)
}

// opMsg carries an operation to its shard in this process, with the
// channel its reply goes to.
type opMsg struct {
	op  broadcastOp
	out chan reply // buffered, size 1; the shard sends exactly once
}

// Ask runs op on the shard that owns it and returns its result. R is the
// type the operation answers with (documented on each operation).
func Ask[R any](c *Core, op Op) (Result[R], error) {
	return awaitOp[R](c, c.sendOp(op))
}

// opMsgPool keeps envelopes whose reply was received: by then no shard
// holds them (a timed-out one is never put back).
var opMsgPool = sync.Pool{New: func() any { return new(opMsg) }}

// pendingOp is an operation sent to its shard whose reply is not yet
// received ([Core.sendOp], [awaitOp]).
type pendingOp struct {
	m   *opMsg
	err error

	// Cluster mode: the grain's remote reply, and what a resend needs.
	f        *actor.Future
	shard    int
	op       broadcastOp
	pid      *actor.PID
	deadline time.Time
}

// sendOp sends op to the shard that owns it without waiting: operations
// sent one after the other run at once on their shards, with no goroutine
// of the caller's. Every pendingOp must be awaited.
func (c *Core) sendOp(op Op) pendingOp {
	if c.stopped.Load() {
		return pendingOp{err: ErrStopped}
	}
	if c.cl != nil {
		return c.cl.send(c.cl.shardIndex(op.Route()), op, time.Now().Add(c.opts.AskTimeout))
	}
	pid, _ := c.pidOf(op.Route())
	m := opMsgPool.Get().(*opMsg)
	m.op, m.out = op, replyPool.Get().(chan reply)
	c.root.Send(pid, m)
	return pendingOp{m: m}
}

// awaitOp receives the reply of a sent operation, as [Ask] returns it.
func awaitOp[R any](c *Core, p pendingOp) (Result[R], error) {
	if c.cl != nil {
		r, err := c.cl.await(p)
		if err != nil {
			return Result[R]{}, err
		}
		return resultOf[R](r)
	}
	if p.err != nil {
		return Result[R]{}, p.err
	}
	r, err := c.wait(p.m.out)
	if err != nil {
		return Result[R]{}, err // the shard may still answer on it: not pooled
	}
	p.m.op, p.m.out = nil, nil
	opMsgPool.Put(p.m)
	return resultOf[R](r)
}

// AskAll runs op on every shard concurrently and returns each shard's result
// in shard order, with the first error. It returns once every shard has
// answered, so a fan-out is complete in memory when it returns.
func AskAll[R any](c *Core, op broadcastOp) ([]Result[R], error) {
	if c.stopped.Load() {
		return nil, ErrStopped
	}
	if c.cl != nil {
		deadline := time.Now().Add(c.opts.AskTimeout)
		pending := make([]pendingOp, c.cl.n)
		for i := range pending {
			pending[i] = c.cl.send(i, op, deadline)
		}
		out := make([]Result[R], len(pending))
		var first error
		for i, p := range pending {
			r, err := c.cl.await(p)
			if err == nil {
				out[i], err = resultOf[R](r)
			}
			if err != nil && first == nil {
				first = err
			}
		}
		return out, first
	}
	chans := make([]chan reply, len(c.pids))
	for i, pid := range c.pids {
		chans[i] = replyPool.Get().(chan reply)
		c.root.Send(pid, &opMsg{op: op, out: chans[i]})
	}
	out := make([]Result[R], len(c.pids))
	var first error
	for i, ch := range chans {
		r, err := c.wait(ch)
		if err == nil {
			out[i], err = resultOf[R](r)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return out, first
}

func resultOf[R any](r reply) (Result[R], error) {
	res := Result[R]{Ticket: r.ticket}
	if wv, ok := r.val.(wireValue); ok {
		// Decoded in a function of its own: a pointer to res here would
		// move res to the heap on every call, the local path's too.
		v, err := decodeWireValue[R](wv)
		if err != nil {
			return res, err
		}
		res.Value = v
		return res, r.err
	}
	if r.val != nil {
		v, ok := r.val.(R)
		if !ok {
			return res, fmt.Errorf("actors: reply of type %T, want %T", r.val, res.Value)
		}
		res.Value = v
	}
	return res, r.err
}

// Forward is what an operation answers to hand the call on to another
// operation, on the shard that owns it: the reply target travels along, so
// the caller still gets one answer, from the last shard (the session check
// goes from the session's shard to its user's this way). Its mutations, if
// any, are enqueued before it is handed on.
type Forward struct {
	Op Op
}

// handleOp runs m's operation and replies, or hands m on to the shard of
// the operation it forwards to.
func (a *shardActor) handleOp(m *opMsg) {
	r := a.runOp(m.op)
	if len(a.changes) > 0 {
		a.pushChanges(m, r)
		return
	}
	a.finish(m, r)
}

// finish answers m with r, or hands m on when r forwards it. On a single
// node a forwarded check that can bring this shard a view of its user
// (viewForward) is told which shard asks, at which view epoch.
func (a *shardActor) finish(m *opMsg, r reply) {
	c := a.core
	if f, ok := r.val.(Forward); ok && r.err == nil {
		if c.cl != nil {
			c.cl.forward(m, f.Op)
			return
		}
		if vf, ok := f.Op.(viewForward); ok {
			f.Op = vf.withView(viewAsk{watcher: a.index + 1, epoch: a.state.ViewEpoch()})
		}
		m.op = f.Op
		pid, _ := c.pidOf(f.Op.Route())
		c.root.Send(pid, m)
		return
	}
	m.out <- r
}

// runOp applies op on the actor's shard. A panic is turned into an error
// reply rather than an actor restart, so the caller is answered.
func (a *shardActor) runOp(op broadcastOp) (r reply) {
	defer func() {
		if p := recover(); p != nil {
			a.core.opts.Logger.Error("shard operation panicked", "op", opName(op), "panic", fmt.Sprint(p))
			r = reply{err: ErrShardBug}
		}
	}()
	var (
		v    any
		muts []shard.Mutation
		err  error
	)
	if co, ok := op.(coreOp); ok {
		v, muts, err = co.applyCore(a.core, a.state, a.core.opts.Now())
	} else {
		v, muts, err = op.apply(a.state, a.core.opts.Now())
	}
	a.noteChanges(muts)
	return reply{val: v, err: err, ticket: a.enqueue(muts)}
}

// coreOp is an operation that also uses state of the core that is not a
// shard's (the user id counter): runOp calls applyCore instead of apply.
type coreOp interface {
	applyCore(c *Core, s *shard.Shard, now time.Time) (any, []shard.Mutation, error)
}

// GetUser answers the user with ID (a shard.User), or shard.ErrUserNotFound.
type GetUser struct {
	ID shard.UserID `json:"id"`
}

// Route implements Op.
func (o GetUser) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o GetUser) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	u, err := s.GetUser(o.ID)
	return u, nil, err
}

// CreateUser stores a new user (answers the stored shard.User), or fails
// with shard.ErrUserExists when the id is taken. The user's email must have
// been claimed for it first ([ClaimEmail]).
type CreateUser struct {
	User shard.User `json:"user"`
}

// Route implements Op.
func (o CreateUser) Route() shard.Route { return shard.UserRoute(o.User.ID) }

func (o CreateUser) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return s.CreateUser(o.User, now)
}

// ClaimEmail claims a normalised email (or another index key, such as a
// system id's) for a user: the one shard that owns the key decides, so of
// two racing claims one wins. It answers a [Claim].
type ClaimEmail struct {
	Email string       `json:"email"`
	ID    shard.UserID `json:"id"`
}

// Claim is the answer to [ClaimEmail]: Claimed, or the Owner that holds the
// key.
type Claim struct {
	Owner   shard.UserID `json:"owner"`
	Claimed bool         `json:"claimed"`
}

// Route implements Op.
func (o ClaimEmail) Route() shard.Route { return shard.EmailRoute(o.Email) }

func (o ClaimEmail) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	owner, ok, muts := s.ClaimEmail(o.Email, o.ID)
	return Claim{Owner: owner, Claimed: ok}, muts, nil
}

// ReleaseEmail gives up a claim made by [ClaimEmail] for ID (nothing when
// another user holds the key). It answers nothing.
type ReleaseEmail struct {
	Email string       `json:"email"`
	ID    shard.UserID `json:"id"`
}

// Route implements Op.
func (o ReleaseEmail) Route() shard.Route { return shard.EmailRoute(o.Email) }

func (o ReleaseEmail) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return nil, s.ReleaseEmail(o.Email, o.ID), nil
}

// PurgeSessions deletes, on every shard it is sent to ([AskAll]), the
// sessions whose expiry is more than OlderThan ago, whatever the shard's
// retention. It answers the number deleted (an int).
type PurgeSessions struct {
	OlderThan time.Duration `json:"older_than"`
}

func (o PurgeSessions) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	muts := s.PurgeSessions(now, o.OlderThan)
	return len(muts), muts, nil
}

// CountRecords answers the sizes of a shard's tables (a shard.Counts); sent
// to every shard ([AskAll]) for metrics and admin commands, not requests.
type CountRecords struct{}

func (CountRecords) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return s.Counts(), nil, nil
}

// coreOps are the operations of this file.
var coreOps = []broadcastOp{
	GetUser{}, CreateUser{}, ClaimEmail{}, ReleaseEmail{}, PurgeSessions{}, CountRecords{},
}

// opTypes names every operation for the codec: each ops_*.go file lists
// its operations in one slice, and this is the list of those slices. A new
// operation is added to its file's slice; TestOpCodecRoundTrip checks that
// each one encodes and decodes.
var opTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, ops := range [][]broadcastOp{coreOps, sessionOps, userOps, emailOps, apiKeyOps, socialOps, rateOps} {
		for _, op := range ops {
			m[opName(op)] = reflect.TypeOf(op)
		}
	}
	return m
}()

func opName(op broadcastOp) string { return reflect.TypeOf(op).Name() }

// ErrBadOp reports an encoded operation that does not decode.
var ErrBadOp = errors.New("actors: bad operation")

// maxOpBytes bounds an encoded operation, so a peer cannot make a decoder
// allocate without bound (the largest, CreateUser, holds at most a user
// record: 64 KiB of extra info and small fields).
const maxOpBytes = 1 << 20

// opWire is an operation on the wire: its name and its fields.
type opWire struct {
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args"`
}

// EncodeOp returns the wire form of op: JSON naming the operation and
// holding its fields.
func EncodeOp(op broadcastOp) ([]byte, error) {
	name := opName(op)
	if _, ok := opTypes[name]; !ok {
		return nil, fmt.Errorf("%w: %T is not a registered operation", ErrBadOp, op)
	}
	args, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("actors: encode %s: %w", name, err)
	}
	return json.Marshal(opWire{Op: name, Args: args})
}

// DecodeOp reads an operation encoded by [EncodeOp]. Anything else (an
// unknown name, fields of the wrong type, unknown fields, oversized input)
// is an error wrapping ErrBadOp; it never panics.
func DecodeOp(b []byte) (broadcastOp, error) {
	if len(b) > maxOpBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadOp, len(b))
	}
	var w opWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOp, err)
	}
	t, ok := opTypes[w.Op]
	if !ok {
		return nil, fmt.Errorf("%w: unknown operation %.64q", ErrBadOp, w.Op)
	}
	p := reflect.New(t)
	if len(w.Args) > 0 {
		if err := strictUnmarshal(w.Args, p.Interface()); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadOp, w.Op, err)
		}
	}
	return p.Elem().Interface().(broadcastOp), nil
}

// strictUnmarshal decodes like json.Unmarshal but refuses unknown fields and
// trailing data: an operation from a peer of another version must fail, not
// run with fields silently dropped.
func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}
