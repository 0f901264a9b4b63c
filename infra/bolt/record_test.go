package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// TestAnOutboxEventKeptAsAStringByAnOlderVersionStillReads: files written
// before outbox events were stored as raw JSON hold them as strings.
func TestAnOutboxEventKeptAsAStringByAnOlderVersionStillReads(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	event := `{"specversion":"1.0","id":"e-1","source":"test","type":"t"}`
	old := `{"orderId":"o-1","status":"created","outbox":[{"id":"m-1","event":"{\"specversion\":\"1.0\",\"id\":\"e-1\",\"source\":\"test\",\"type\":\"t\"}","at":"2026-01-01T00:00:00Z"}]}`
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketOrders).Put([]byte("o-1"), []byte(old)) }); err != nil {
		t.Fatal(err)
	}
	o, err := s.Order(t.Context(), "o-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Message{{ID: "m-1", Legacy: event, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if len(o.Outbox) != 1 || o.Outbox[0] != want[0] {
		t.Errorf("outbox %+v; want %+v", o.Outbox, want)
	}
	// Written back, it is raw JSON and reads the same.
	if _, err := s.UpdateOrder(t.Context(), "o-1", func(*domain.Order) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if o, _ = s.Order(t.Context(), "o-1"); len(o.Outbox) != 1 || o.Outbox[0] != want[0] {
		t.Errorf("after a write: outbox %+v; want %+v", o.Outbox, want)
	}
}

// TestAnOrderReadsBackAsItWasWritten: the hand-written outbox encoding
// reads back through the record types, every field of every message kept.
func TestAnOrderReadsBackAsItWasWritten(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 123_000_000, time.UTC)
	o := domain.Order{ID: "o-1", CustomerID: "alice", Status: "packaged", Amount: 1200, Reserved: 1200, CreatedAt: at, UpdatedAt: at,
		History: []domain.Step{{Status: "created", By: "alice", Event: "test e-1", At: at}},
		Outbox: []domain.Message{
			{ID: "test e-1", Type: "t", Source: "test", EventID: "e-1", Data: `{"q":"a \"quoted\" word"}`, At: at,
				TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v,a=\"b"},
			{ID: "m-2", Release: 1200, At: at},
			{ID: "m-3", Settle: 1200, At: at.Add(time.Second)},
			{ID: "m-4", Legacy: `{"specversion":"1.0","id":"e-4","source":"test","type":"t"}`, At: at},
		}}
	raw, err := encodeOrder(o)
	if err != nil {
		t.Fatal(err)
	}
	var r orderRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%v:\n%s", err, raw)
	}
	got, err := fromRecords(r.Outbox)
	if err != nil {
		t.Fatal(err)
	}
	r.Order.Outbox = got
	if !reflect.DeepEqual(r.Order, o) {
		t.Errorf("read back\n%+v\nwant\n%+v", r.Order, o)
	}
}

// TestReservationsKeptInACustomerRecordByAnOlderVersionMoveToTheirBucket:
// files written before reservations had their own bucket hold them inside
// the customer's record; opening the file moves them, in the order they were
// made, and the record no longer carries them.
func TestReservationsKeptInACustomerRecordByAnOlderVersionMoveToTheirBucket(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := `{"customerId":"alice","name":"Alice","creditLimit":1000,"availableCredit":400,` +
		`"reservations":[{"orderId":"o-9","amount":500},{"orderId":"o-1","amount":100}],` +
		`"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}`
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketReservations); err != nil {
			return err
		}
		return tx.Bucket(bucketCustomers).Put([]byte("alice"), []byte(old))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []domain.Reservation{{OrderID: "o-9", Amount: 500}, {OrderID: "o-1", Amount: 100}}
	c, err := s.Customer(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Reservations, want) || c.Available != 400 {
		t.Errorf("reservations %+v, available %d; want %+v, 400", c.Reservations, c.Available, want)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if raw := tx.Bucket(bucketCustomers).Get([]byte("alice")); bytes.Contains(raw, []byte("reservations")) {
			t.Errorf("the record still holds reservations: %s", raw)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c, err = s.UpdateCustomer(t.Context(), "alice", func(c *domain.Customer) error {
		c.Release("o-9")
		return c.Reserve("o-2", 200)
	})
	if err != nil {
		t.Fatal(err)
	}
	want = []domain.Reservation{{OrderID: "o-1", Amount: 100}, {OrderID: "o-2", Amount: 200}}
	if c, _ = s.Customer(t.Context(), "alice"); !reflect.DeepEqual(c.Reservations, want) || c.Available != 700 {
		t.Errorf("after releasing one and reserving another: reservations %+v, available %d; want %+v, 700",
			c.Reservations, c.Available, want)
	}
}

// TestAStringIsWrittenAsEncodingJSONWritesIt: the outbox encoder's fast path
// for strings that need no escaping gives what encoding/json gives, and the
// others go through encoding/json.
func TestAStringIsWrittenAsEncodingJSONWritesIt(t *testing.T) {
	for _, s := range []string{"", "m-1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", `k="v"`, `a\b`,
		"<script>&", "tab\there", "nul\x00", "café", "\u2028", "bad \xff utf-8", "del\x7f"} {
		want, _ := json.Marshal(s)
		if got := appendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("appendString(%q) = %s; want x%s", s, got, want)
		}
	}
}

// TestACustomerChangeRolledBackIsNotRemembered: the writer remembers the
// customers it stored only once their transaction committed; a change in a
// transaction that rolled back is read neither from the file nor from the
// writer's memory.
func TestACustomerChangeRolledBackIsNotRemembered(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if _, err := s.CreateCustomer(ctx, domain.Customer{ID: "alice", Name: "Alice", CreditLimit: 1000, Available: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateCustomer(ctx, "alice", func(c *domain.Customer) error { return c.Reserve("o-1", 100) }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full, say")
	err = s.w.do(func(tx *bbolt.Tx) error {
		c, was, err := s.txCustomer(tx, "alice")
		if err != nil {
			return err
		}
		c.Release("o-1")
		if err := c.Reserve("o-2", 900); err != nil {
			return err
		}
		if err := s.txPutCustomer(tx, c, was); err != nil {
			return err
		}
		return abort{boom}
	})
	if !errors.Is(err, boom) {
		t.Fatalf("the unit of work: %v; want %v", err, boom)
	}
	want := []domain.Reservation{{OrderID: "o-1", Amount: 100}}
	c, err := s.UpdateCustomer(ctx, "alice", func(*domain.Customer) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Reservations, want) || c.Available != 900 {
		t.Errorf("the writer reads reservations %+v, available %d; want %+v, 900", c.Reservations, c.Available, want)
	}
	if c, _ = s.Customer(ctx, "alice"); !reflect.DeepEqual(c.Reservations, want) || c.Available != 900 {
		t.Errorf("the file holds reservations %+v, available %d; want %+v, 900", c.Reservations, c.Available, want)
	}
}
