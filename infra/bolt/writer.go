package bolt

import (
	"errors"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// maxGroup bounds how many units of work share one transaction.
const maxGroup = 256

// errClosed answers a unit of work handed to a closed store.
var errClosed = errors.New("embedded store is closed")

// writer commits units of work in groups: one goroutine runs every write
// transaction, and the units of work that arrive while one commits share
// the next, so many callers share one fsync. Nothing waits for company: a
// unit of work arriving at an idle writer commits at once. Durability is
// bbolt's: a caller hears back only after its transaction is on disk.
//
// A unit of work refuses (a domain rule, a missing record) before it writes
// anything, so its refusal leaves the others' writes in the transaction
// alone. One that fails after writing returns an abort, which rolls the
// whole group back; then each unit of work of the group runs again in a
// transaction of its own, so only the failing one fails.
type writer struct {
	db *bbolt.DB
	// after runs on the writer's goroutine after each transaction, told
	// whether it committed.
	after func(committed bool)
	reqs  chan *request
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

type request struct {
	fn  func(*bbolt.Tx) error
	err chan error
}

// abort marks an error that happened after a unit of work wrote.
type abort struct{ err error }

func (a abort) Error() string { return a.err.Error() }
func (a abort) Unwrap() error { return a.err }

func newWriter(db *bbolt.DB, after func(committed bool)) *writer {
	w := &writer{db: db, after: after, reqs: make(chan *request), done: make(chan struct{})}
	w.wg.Add(1)
	go w.run()
	return w
}

// do runs fn in a write transaction shared with other units of work and
// returns fn's error once the transaction is committed (or rolled back).
func (w *writer) do(fn func(*bbolt.Tx) error) error {
	r := &request{fn: fn, err: make(chan error, 1)}
	select {
	case w.reqs <- r:
		return <-r.err
	case <-w.done:
		return errClosed
	}
}

func (w *writer) run() {
	defer w.wg.Done()
	group := make([]*request, 0, maxGroup)
	for {
		select {
		case <-w.done:
			return
		case r := <-w.reqs:
			group = append(group[:0], r)
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-w.reqs:
				group = append(group, r)
			default:
				break more
			}
		}
		w.commit(group)
	}
}

// commit runs a group in one transaction and answers each unit of work.
func (w *writer) commit(group []*request) {
	results := make([]error, len(group))
	err := w.db.Update(func(tx *bbolt.Tx) error {
		for i, r := range group {
			results[i] = r.fn(tx)
			var a abort
			if errors.As(results[i], &a) {
				return a
			}
		}
		return nil
	})
	w.after(err == nil)
	switch {
	case err == nil:
		for i, r := range group {
			r.err <- results[i]
		}
	case len(group) == 1:
		var a abort
		if errors.As(err, &a) {
			err = a.err
		}
		group[0].err <- err
	default:
		// Something failed after writing (or the commit itself): find out
		// which unit of work, each alone.
		for _, r := range group {
			w.commit([]*request{r})
		}
	}
}

// close stops the writer once the group in hand is committed; units of
// work handed over later get errClosed. Closing again does nothing.
func (w *writer) close() {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
}
