package bolt

import (
	"encoding/json"
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

// TestAnOrderReadsBackAsItWasWritten: the hand-written outbox encoding
// reads back through the record types, every field of every message kept.
func TestAnOrderReadsBackAsItWasWritten(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 123_000_000, time.UTC)
	o := domain.Order{ID: "o-1", CustomerID: "alice", Status: "packaged", Amount: 1200, Reserved: 1200, CreatedAt: at, UpdatedAt: at,
		History: []domain.Step{{Status: "created", By: "alice", Event: "test e-1", At: at}},
		Outbox: []domain.Message{
			{ID: "m-1", Event: `{"specversion":"1.0","id":"e-1","source":"test","type":"t","data":{"q":"a \"quoted\" word"}}`, At: at,
				TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v,a=\"b"},
			{ID: "m-2", Release: 1200, At: at},
			{ID: "m-3", Settle: 1200, At: at.Add(time.Second)},
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
