package bolt

import (
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
	want := []domain.Message{{ID: "m-1", Event: event, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
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
