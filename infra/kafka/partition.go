package kafka

import (
	"context"

	"github.com/IBM/sarama"
)

// partitionWork runs one partition's records key by key, after Confluent's
// Parallel Consumer: records with different keys are in flight at once,
// records with the same key (one order) one after the other in offset
// order, and records without a key share one lane.
//
// One goroutine (run's) owns all of the state below; each record runs in a
// goroutine of its own that reports back on results, so nothing is locked.
// At most max records are held (running, or queued behind their key's
// running record): at the bound no more are taken from the claim, and
// sarama's fetching backs up behind it. So at most max record goroutines
// exist, each for one record only.
//
// The mark is the lowest offset not yet done (or one past the last done
// when none is held): a commit never passes a record still in hand, and a
// restart redelivers only records from the oldest not done (the handlers
// are idempotent for the done ones redelivered with them).
type partitionWork struct {
	ctx     context.Context // ends with the claim: waits between retries stop
	max     int
	process func(ctx context.Context, msg *sarama.ConsumerMessage) bool
	mark    func(next int64)

	lanes   map[string]*lane // key → its records held, the first running
	held    []*held          // records held, in offset order
	next    int64            // the mark; -1 before anything is done
	running int
	results chan *held
}

// held is a record taken from the claim and not yet marked.
type held struct {
	msg  *sarama.ConsumerMessage
	done bool // handled or dead-lettered
	ok   bool // the result process gave
}

// lane is one key's records, oldest first; the first is running.
type lane struct {
	queue []*held
	// stalled: its running record ended not done, so nothing after it may
	// run in this claim.
	stalled bool
}

func newPartitionWork(ctx context.Context, max int, process func(context.Context, *sarama.ConsumerMessage) bool, mark func(int64)) *partitionWork {
	return &partitionWork{
		ctx: ctx, max: max, process: process, mark: mark,
		lanes: map[string]*lane{}, next: -1,
		// Room for every possible result, so a finishing record never
		// waits for the loop.
		results: make(chan *held, max),
	}
}

// run takes records from msgs until the claim ends (ctx done or msgs
// closed by a rebalance); stop is called then, so that the records in hand
// stop waiting between retries. It returns once those have finished and
// what is done is marked. Records queued behind a running one of their key
// are not started after the end: they are delivered again.
func (w *partitionWork) run(msgs <-chan *sarama.ConsumerMessage, stop func()) {
	for {
		if w.ctx.Err() != nil {
			// Checked first: select picks at random among ready cases, and
			// nothing may start once the claim has ended.
			w.drain()
			return
		}
		in := msgs
		if len(w.held) >= w.max {
			in = nil // at the bound: take nothing until a record is done
		}
		select {
		case msg, ok := <-in:
			if !ok {
				stop()
				w.drain()
				return
			}
			w.take(msg)
		case h := <-w.results:
			w.finish(h)
		case <-w.ctx.Done():
			w.drain()
			return
		}
	}
}

// drain waits for the running records; nothing new starts.
func (w *partitionWork) drain() {
	for w.running > 0 {
		w.finish(<-w.results)
	}
}

// take holds msg in its key's lane, and starts it if the lane was idle.
func (w *partitionWork) take(msg *sarama.ConsumerMessage) {
	h := &held{msg: msg}
	w.held = append(w.held, h)
	key := string(msg.Key) // nil and empty: the one lane of records without a key
	l := w.lanes[key]
	if l == nil {
		l = &lane{}
		w.lanes[key] = l
	}
	l.queue = append(l.queue, h)
	if len(l.queue) == 1 && !l.stalled {
		w.start(h)
	}
}

func (w *partitionWork) start(h *held) {
	w.running++
	go func() {
		h.ok = w.process(w.ctx, h.msg)
		w.results <- h
	}()
}

// finish records h's result, marks what is contiguously done, and starts
// the next record of h's key.
func (w *partitionWork) finish(h *held) {
	w.running--
	key := string(h.msg.Key)
	l := w.lanes[key]
	if !h.ok {
		// Not done (the claim ended while it waited to retry): neither it
		// nor anything after it is marked, and its key's later records must
		// not run before it does, so they wait for the redelivery too.
		l.stalled = true
		return
	}
	h.done = true
	w.advance()
	l.queue = l.queue[1:]
	switch {
	case len(l.queue) == 0:
		delete(w.lanes, key)
	case w.ctx.Err() == nil:
		w.start(l.queue[0])
	}
}

// advance moves the mark past the done records at the head of held.
func (w *partitionWork) advance() {
	moved := false
	for len(w.held) > 0 && w.held[0].done {
		w.next = w.held[0].msg.Offset + 1
		w.held[0] = nil // let the record go before the slice moves on
		w.held = w.held[1:]
		moved = true
	}
	if moved {
		w.mark(w.next)
	}
}
