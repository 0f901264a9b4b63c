package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// fakeClaim runs a partitionWork over records fed by the test, with a
// process function of the test's, and records what it marks.
type fakeClaim struct {
	msgs   chan *sarama.ConsumerMessage
	cancel context.CancelFunc
	done   chan struct{}
	next   int64

	mu    sync.Mutex
	marks []int64
}

func startClaim(t *testing.T, max int, process func(context.Context, *sarama.ConsumerMessage) bool) *fakeClaim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeClaim{msgs: make(chan *sarama.ConsumerMessage), cancel: cancel, done: make(chan struct{})}
	w := newPartitionWork(ctx, max, process, func(next int64) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if n := len(f.marks); n > 0 && next <= f.marks[n-1] {
			t.Errorf("mark went from %d to %d", f.marks[n-1], next)
		}
		f.marks = append(f.marks, next)
	})
	go func() { defer close(f.done); w.run(f.msgs, cancel) }()
	t.Cleanup(func() { cancel(); <-f.done })
	return f
}

// feed sends records with these keys ("-" is no key), at the next offsets.
func (f *fakeClaim) feed(keys ...string) {
	for _, k := range keys {
		msg := &sarama.ConsumerMessage{Topic: "t", Offset: f.next}
		if k != "-" {
			msg.Key = []byte(k)
		}
		f.next++
		f.msgs <- msg
	}
}

// tryFeed reports whether the claim took a record within d.
func (f *fakeClaim) tryFeed(key string, d time.Duration) bool {
	select {
	case f.msgs <- &sarama.ConsumerMessage{Topic: "t", Key: []byte(key), Offset: f.next}:
		f.next++
		return true
	case <-time.After(d):
		return false
	}
}

func (f *fakeClaim) mark() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.marks) == 0 {
		return -1
	}
	return f.marks[len(f.marks)-1]
}

// stop ends the claim as a session end does, and waits for run to return.
func (f *fakeClaim) stop() {
	f.cancel()
	<-f.done
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestPartitionWorkKeepsEachKeysRecordsInOrderWhileKeysOverlap(t *testing.T) {
	const keys, perKey = 40, 25
	var mu sync.Mutex
	seen := map[string][]int64{}
	var running, most atomic.Int32
	f := startClaim(t, 64, func(_ context.Context, msg *sarama.ConsumerMessage) bool {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		mu.Lock()
		seen[string(msg.Key)] = append(seen[string(msg.Key)], msg.Offset)
		mu.Unlock()
		return true
	})
	var order []string
	for range perKey {
		for k := range keys {
			order = append(order, fmt.Sprintf("o-%d", k))
		}
	}
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	f.feed(order...)
	eventually(t, "every record marked", func() bool { return f.mark() == int64(len(order)) })

	mu.Lock()
	defer mu.Unlock()
	for k, offsets := range seen {
		if !slices.IsSorted(offsets) || len(offsets) != perKey {
			t.Errorf("key %s handled at offsets %v, want %d in offset order", k, offsets, perKey)
		}
	}
	if len(seen) != keys {
		t.Errorf("%d keys handled, want %d", len(seen), keys)
	}
	if most.Load() < 2 {
		t.Errorf("at most %d records ran at once; different keys should overlap", most.Load())
	}
}

func TestPartitionWorkRunsDifferentKeysAtOnceAndOneKeyOneAtATime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  []string
		atime int32 // records that must be running together
	}{
		{"different keys overlap", []string{"a", "b", "c"}, 3},
		{"one key runs alone", []string{"a", "a", "a"}, 1},
		{"records without a key are one lane", []string{"-", "-", ""}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var running, most atomic.Int32
			release := make(chan struct{})
			f := startClaim(t, 16, func(context.Context, *sarama.ConsumerMessage) bool {
				n := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
				return true
			})
			f.feed(tc.keys...)
			eventually(t, "the records to start", func() bool { return running.Load() == tc.atime })
			time.Sleep(20 * time.Millisecond) // room for one more to start, if it wrongly would
			if got := running.Load(); got != tc.atime {
				t.Fatalf("%d running at once, want %d", got, tc.atime)
			}
			close(release)
			eventually(t, "all marked", func() bool { return f.mark() == int64(len(tc.keys)) })
			if most.Load() != tc.atime {
				t.Errorf("at most %d ran at once, want %d", most.Load(), tc.atime)
			}
		})
	}
}

func TestPartitionWorkNeverMarksPastARecordNotDone(t *testing.T) {
	// The record at offset blocked (key "slow") runs until released; the
	// records of other keys around it finish meanwhile.
	for _, blocked := range []int64{0, 3, 9} {
		t.Run(fmt.Sprintf("blocked at %d", blocked), func(t *testing.T) {
			release := make(chan struct{})
			var handled atomic.Int32
			f := startClaim(t, 32, func(_ context.Context, msg *sarama.ConsumerMessage) bool {
				if string(msg.Key) == "slow" {
					<-release
				}
				handled.Add(1)
				return true
			})
			keys := make([]string, 10)
			for i := range keys {
				keys[i] = fmt.Sprintf("k-%d", i)
			}
			keys[blocked] = "slow"
			f.feed(keys...)
			eventually(t, "the other keys", func() bool { return handled.Load() == 9 })
			time.Sleep(10 * time.Millisecond)
			if got := f.mark(); got > blocked || (blocked > 0 && got != blocked) {
				t.Fatalf("marked %d with offset %d not done; want %d", got, blocked, blocked)
			}
			close(release)
			eventually(t, "the mark past all", func() bool { return f.mark() == 10 })
		})
	}
}

func TestPartitionWorkHoldsNoMoreThanMaxRecords(t *testing.T) {
	const max = 4
	release := make(chan struct{})
	var started atomic.Int32
	f := startClaim(t, max, func(context.Context, *sarama.ConsumerMessage) bool {
		started.Add(1)
		<-release
		return true
	})
	// Two keys: some records run, the rest wait behind their key; both count.
	for i := range max {
		if !f.tryFeed([]string{"a", "b"}[i%2], time.Second) {
			t.Fatalf("record %d not taken below the bound", i)
		}
	}
	if f.tryFeed("c", 50*time.Millisecond) {
		t.Fatalf("a record beyond the bound of %d was taken", max)
	}
	if started.Load() != 2 {
		t.Errorf("%d started, want 2 (one per key)", started.Load())
	}
	close(release)
	if !f.tryFeed("c", time.Second) {
		t.Fatal("no record taken once the held ones were done")
	}
	eventually(t, "all marked", func() bool { return f.mark() == max+1 })
}

func TestPartitionWorkFailingKeyHoldsBackOnlyItself(t *testing.T) {
	// "bad" fails until released (as process does while it retries); the
	// other keys go on, and "bad"'s later record waits for it.
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	f := startClaim(t, 32, func(_ context.Context, msg *sarama.ConsumerMessage) bool {
		if string(msg.Key) == "bad" && msg.Offset == 0 {
			<-release // retrying, then dead-lettered: done
		}
		mu.Lock()
		order = append(order, fmt.Sprintf("%s@%d", msg.Key, msg.Offset))
		mu.Unlock()
		return true
	})
	f.feed("bad", "x", "bad", "y", "z")
	eventually(t, "the other keys", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 3 })
	mu.Lock()
	first := slices.Sorted(slices.Values(order))
	mu.Unlock()
	if fmt.Sprint(first) != "[x@1 y@3 z@4]" {
		t.Errorf("while bad@0 retried, handled %v; want x, y and z only", first)
	}
	if f.mark() != -1 {
		t.Errorf("marked %d while offset 0 was not done", f.mark())
	}
	close(release)
	eventually(t, "all marked", func() bool { return f.mark() == 5 })
	mu.Lock()
	defer mu.Unlock()
	if i, j := slices.Index(order, "bad@0"), slices.Index(order, "bad@2"); i < 0 || j < i {
		t.Errorf("handled %v: bad@2 must come after bad@0", order)
	}
}

func TestPartitionWorkAtClaimEndFinishesRecordsInHandAndStartsNoMore(t *testing.T) {
	// At the end: "a"@0 is running and finishes; "b"@1 is running and ends
	// not done (it was waiting to retry); "a"@2 and "b"@3 wait behind them
	// and must not start. The mark stops at the first not done.
	proceed := make(chan struct{})
	var mu sync.Mutex
	var ran []int64
	var running atomic.Int32
	f := startClaim(t, 32, func(ctx context.Context, msg *sarama.ConsumerMessage) bool {
		running.Add(1)
		mu.Lock()
		ran = append(ran, msg.Offset)
		mu.Unlock()
		<-proceed
		if string(msg.Key) == "b" {
			<-ctx.Done() // a wait between retries stops early
			return false
		}
		return true
	})
	f.feed("a", "b", "a", "b")
	eventually(t, "both keys running", func() bool { return running.Load() == 2 })
	stopped := make(chan struct{})
	go func() { f.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("run returned while records were in hand")
	case <-time.After(30 * time.Millisecond):
	}
	close(proceed)
	<-stopped
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(ran)
	if fmt.Sprint(ran) != "[0 1]" {
		t.Errorf("ran offsets %v, want [0 1] only", ran)
	}
	if f.mark() != 1 {
		t.Errorf("marked %d, want 1 (offset 1 not done)", f.mark())
	}
}

func TestPartitionWorkStopsWhenTheClaimsMessagesClose(t *testing.T) {
	// A cooperative rebalance revokes a claim by closing Messages while the
	// session goes on: the records in hand must stop waiting too.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs := make(chan *sarama.ConsumerMessage, 1)
	msgs <- &sarama.ConsumerMessage{Key: []byte("a")}
	var stopped atomic.Bool
	w := newPartitionWork(ctx, 4, func(ctx context.Context, _ *sarama.ConsumerMessage) bool {
		close(msgs)
		<-ctx.Done()
		return false
	}, func(int64) { t.Error("marked a record not done") })
	done := make(chan struct{})
	go func() { w.run(msgs, func() { stopped.Store(true); cancel() }); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after Messages closed")
	}
	if !stopped.Load() {
		t.Error("stop was not called")
	}
}
