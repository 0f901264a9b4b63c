// Package bolt is the embedded store: one bbolt file under DATA_DIR, no
// server, no CGO. Every unit of work runs in a bbolt transaction, so each is
// atomic and durable once it returns; units of work that arrive together
// share a transaction and its fsync (see writer).
//
// Orders are listed through indexes kept in the same transactions as the
// orders: each order gets a sequence number when it is recorded (commit
// order, so a page cursor never skips an order recorded later), and the
// indexes map sequence → id and (status, sequence) → id.
package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// FileName is the name of the database file inside the data directory.
const FileName = "cupcakes.db"

var (
	bucketCustomers = []byte("customers")
	bucketOrders    = []byte("orders")
	// bucketPending indexes the orders whose outbox holds messages: order
	// id → the time of its oldest message. It changes in the same
	// transaction as the order.
	bucketPending = []byte("pending")
	// bucketPlaces: order id → its sequence number (8 bytes) and status.
	bucketPlaces = []byte("orderplaces")
	// bucketBySeq: sequence number → order id, every order in the order
	// it was recorded.
	bucketBySeq = []byte("bysequence")
	// bucketByStatus: status, 0, sequence number → order id.
	bucketByStatus = []byte("bystatus")
	// bucketReservations: customer id, 0, order id → the reservation's
	// sequence number and amount (8 bytes each). A customer's record
	// stays the same size however many orders hold its credit, and a
	// change to one reservation writes that one key.
	bucketReservations = []byte("reservations")
)

var buckets = [][]byte{bucketCustomers, bucketOrders, bucketPending, bucketPlaces, bucketBySeq, bucketByStatus, bucketReservations}

// Store keeps customers and orders (with their outboxes) in a bbolt file.
type Store struct {
	db    *bbolt.DB
	w     *writer
	cache *orderCache
	// written holds the orders the writer's current transaction stored,
	// for the units of work after them in the same transaction, and for
	// the cache once it commits; writes numbers them. Only the writer's
	// goroutine uses them.
	written map[string]version
	writes  uint64
	// customers holds the customers the writer stored last, with their
	// reservations as stored, and customersWritten those its current
	// transaction stored (they join customers once it commits). A customer
	// everybody orders from is read and changed many times a second; this
	// spares reading its reservations back each time. Only the writer's
	// goroutine uses them; readers read the file.
	customers, customersWritten map[string]customerVersion
}

// customerVersion is a customer as the writer stored it.
type customerVersion struct {
	c    domain.Customer
	held []held
}

// customerCacheSize bounds the customers the writer keeps.
const customerCacheSize = 1024

var _ domain.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: 5 * time.Second,
		// The free-page list is rebuilt at open instead of written at each
		// commit, and kept as a map: commits stay cheap as the file grows.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
		PageSize:       16 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("open embedded store %s (is another process using it?): %w", path, err)
	}
	if err = db.Update(initBuckets); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init embedded store %s: %w", path, err)
	}
	s := &Store{db: db, cache: newOrderCache(), written: map[string]version{},
		customers: map[string]customerVersion{}, customersWritten: map[string]customerVersion{}}
	s.w = newWriter(db, s.committed)
	return s, nil
}

// committed runs on the writer's goroutine after each transaction: the
// orders it stored go to the cache if it committed, and are forgotten if
// not.
func (s *Store) committed(ok bool) {
	if ok && len(s.written) > 0 {
		s.cache.put(s.written)
	}
	clear(s.written)
	if ok {
		for id, v := range s.customersWritten {
			if _, cached := s.customers[id]; !cached && len(s.customers) >= customerCacheSize {
				for old := range s.customers { // any one
					delete(s.customers, old)
					break
				}
			}
			s.customers[id] = v
		}
	}
	clear(s.customersWritten)
}

// txOrder reads an order inside the writer's transaction: as an earlier
// unit of work of the same transaction stored it, else from the cache,
// else from the file.
func (s *Store) txOrder(tx *bbolt.Tx, id string) (domain.Order, error) {
	if v, ok := s.written[id]; ok {
		return own(v.order), nil
	}
	if o, _, ok := s.cache.get(id); ok {
		return o, nil
	}
	return getOrder(tx, id)
}

// txNumber is the version number of an order as the writer's transaction
// sees it; 0 if it is not known (not cached).
func (s *Store) txNumber(id string) uint64 {
	if v, ok := s.written[id]; ok {
		return v.n
	}
	return s.cache.number(id)
}

// txPutOrder stores an order in the writer's transaction.
func (s *Store) txPutOrder(tx *bbolt.Tx, o domain.Order) error {
	return s.txPutEncoded(tx, o, nil)
}

// txPutEncoded stores an order, already encoded if raw is not nil.
func (s *Store) txPutEncoded(tx *bbolt.Tx, o domain.Order, raw []byte) error {
	if err := putOrder(tx, o, raw); err != nil {
		return err
	}
	s.writes++
	s.written[o.ID] = version{order: own(o), n: s.writes}
	return nil
}

// readOrder reads an order outside the writer: from the cache, else the file.
func (s *Store) readOrder(tx *bbolt.Tx, id string) (domain.Order, error) {
	if o, _, ok := s.cache.get(id); ok {
		return o, nil
	}
	return getOrder(tx, id)
}

// initBuckets creates what is missing; a file written before the order
// indexes existed gets them, its orders numbered by creation time.
func initBuckets(tx *bbolt.Tx) error {
	indexed, credited := tx.Bucket(bucketPlaces) != nil, tx.Bucket(bucketReservations) != nil
	for _, b := range buckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if !credited {
		if err := moveReservations(tx); err != nil {
			return err
		}
	}
	if indexed {
		return nil
	}
	var all []domain.Order
	err := tx.Bucket(bucketOrders).ForEach(func(k, _ []byte) error {
		o, err := getOrder(tx, string(k))
		all = append(all, o)
		return err
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(all, func(a, b domain.Order) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, o := range all {
		if err := index(tx, o); err != nil {
			return err
		}
	}
	return nil
}

// Close waits for the writes in hand and closes the file.
func (s *Store) Close() error {
	s.w.close()
	return s.db.Close()
}

// Ping reports whether the file is open.
func (s *Store) Ping(context.Context) error {
	return s.db.View(func(*bbolt.Tx) error { return nil })
}

// moveReservations moves the reservations that a file written before they
// had their own bucket keeps inside each customer's record to the bucket.
func moveReservations(tx *bbolt.Tx) error {
	type legacyCustomer struct {
		domain.Customer
		Reservations []domain.Reservation `json:"reservations"`
	}
	var held []domain.Customer
	err := tx.Bucket(bucketCustomers).ForEach(func(k, v []byte) error {
		var r legacyCustomer
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode customer %s: %w", k, err)
		}
		if len(r.Reservations) > 0 {
			r.Customer.Reservations = r.Reservations
			held = append(held, r.Customer)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range held {
		if _, err := putCustomer(tx, c, nil); err != nil {
			return fmt.Errorf("move the reservations of customer %s: %w", c.ID, err)
		}
	}
	return nil
}

// The domain types keep the outbox out of their JSON (the API's answers);
// the record adds it back for storage.
type orderRecord struct {
	domain.Order
	Outbox []messageRecord `json:"outbox,omitempty"`
}

// messageRecord keeps an outbox event's data as the JSON it is, not as a
// string of JSON inside JSON: no escaping on every write and unescaping on
// every read of the order. (Files written before December 2026 hold whole
// structured CloudEvents in "event", as JSON or as a string; both read.)
type messageRecord struct {
	ID      string          `json:"id"`
	Type    string          `json:"type,omitempty"`
	Source  string          `json:"source,omitempty"`
	EventID string          `json:"eventId,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Event   json.RawMessage `json:"event,omitempty"`
	Release int64           `json:"release,omitempty"`
	Settle  int64           `json:"settle,omitempty"`
	At      time.Time       `json:"at"`
	// The trace context of the span that emitted it (see domain.Message).
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

func fromRecords(rs []messageRecord) ([]domain.Message, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	out := make([]domain.Message, len(rs))
	for i, r := range rs {
		out[i] = domain.Message{ID: r.ID, Type: r.Type, Source: r.Source, EventID: r.EventID, Data: string(r.Data),
			Legacy: string(r.Event), Release: r.Release, Settle: r.Settle, At: r.At,
			TraceParent: r.TraceParent, TraceState: r.TraceState}
		if len(r.Event) > 0 && r.Event[0] == '"' {
			if err := json.Unmarshal(r.Event, &out[i].Legacy); err != nil {
				return nil, fmt.Errorf("decode outbox message %s: %w", r.ID, err)
			}
		}
	}
	return out, nil
}

// txCustomer reads a customer inside the writer's transaction: as an
// earlier unit of work of the same transaction stored it, else as the
// writer last stored it, else from the file. The customer returned has a
// list of reservations of its own.
func (s *Store) txCustomer(tx *bbolt.Tx, id string) (domain.Customer, []held, error) {
	v, ok := s.customersWritten[id]
	if !ok {
		v, ok = s.customers[id]
	}
	if !ok {
		return getCustomer(tx, id)
	}
	v.c.Reservations = slices.Clone(v.c.Reservations)
	return v.c, v.held, nil
}

// txPutCustomer stores a customer in the writer's transaction.
func (s *Store) txPutCustomer(tx *bbolt.Tx, c domain.Customer, was []held) error {
	held, err := putCustomer(tx, c, was)
	if err != nil {
		return err
	}
	c.Reservations = slices.Clone(c.Reservations)
	s.customersWritten[c.ID] = customerVersion{c: c, held: held}
	return nil
}

// held is a reservation as stored: its sequence number keeps the order in
// which the customer's reservations were made.
type held struct {
	seq uint64
	domain.Reservation
}

// getCustomer reads a customer with its reservations, and returns them also
// as stored, for putCustomer to write only what changed.
func getCustomer(tx *bbolt.Tx, id string) (domain.Customer, []held, error) {
	var c domain.Customer
	if err := get(tx, bucketCustomers, id, "customer", &c); err != nil {
		return c, nil, err
	}
	prefix := append([]byte(id), 0)
	var hs []held
	cur := tx.Bucket(bucketReservations).Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if len(v) != 16 {
			return c, nil, fmt.Errorf("decode reservation %q: %d bytes", k, len(v))
		}
		hs = append(hs, held{seq: binary.BigEndian.Uint64(v), Reservation: domain.Reservation{
			OrderID: string(k[len(prefix):]), Amount: int64(binary.BigEndian.Uint64(v[8:]))}})
	}
	slices.SortFunc(hs, func(a, b held) int { return cmp.Compare(a.seq, b.seq) })
	if len(hs) > 0 {
		c.Reservations = make([]domain.Reservation, len(hs))
		for i, h := range hs {
			c.Reservations[i] = h.Reservation
		}
	}
	return c, hs, nil
}

// putCustomer stores c: its record, and of its reservations those that
// differ from was (as getCustomer read them). It returns c's reservations
// as now stored. Its errors come after writing, so they abort the
// transaction.
func putCustomer(tx *bbolt.Tx, c domain.Customer, was []held) ([]held, error) {
	if err := put(tx, bucketCustomers, c.ID, c); err != nil {
		return nil, abort{err}
	}
	b := tx.Bucket(bucketReservations)
	stored := make(map[string]held, len(was))
	for _, h := range was {
		stored[h.OrderID] = h
	}
	key := func(order string) []byte { return append(append([]byte(c.ID), 0), order...) }
	now := make([]held, 0, len(c.Reservations))
	for _, r := range c.Reservations {
		h, ok := stored[r.OrderID]
		delete(stored, r.OrderID)
		if ok && h.Amount == r.Amount {
			now = append(now, h)
			continue
		}
		if !ok {
			var err error
			if h.seq, err = b.NextSequence(); err != nil {
				return nil, abort{err}
			}
		}
		h.Reservation = r
		now = append(now, h)
		v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), h.seq), uint64(r.Amount))
		if err := b.Put(key(r.OrderID), v); err != nil {
			return nil, abort{err}
		}
	}
	for order := range stored {
		if err := b.Delete(key(order)); err != nil {
			return nil, abort{err}
		}
	}
	return now, nil
}

func getOrder(tx *bbolt.Tx, id string) (domain.Order, error) {
	var r orderRecord
	if err := get(tx, bucketOrders, id, "order", &r); err != nil {
		return r.Order, err
	}
	var err error
	r.Order.Outbox, err = fromRecords(r.Outbox)
	return r.Order, err
}

// putOrder stores o and keeps the indexes in step with it. Its errors come
// after writing, so they abort the transaction.
func putOrder(tx *bbolt.Tx, o domain.Order, raw []byte) error {
	if raw == nil {
		var err error
		if raw, err = encodeOrder(o); err != nil {
			return err // before writing: the transaction goes on
		}
	}
	if err := tx.Bucket(bucketOrders).Put([]byte(o.ID), raw); err != nil {
		return abort{err}
	}
	if err := index(tx, o); err != nil {
		return abort{fmt.Errorf("index order %s: %w", o.ID, err)}
	}
	pending := tx.Bucket(bucketPending)
	if len(o.Outbox) == 0 {
		if err := pending.Delete([]byte(o.ID)); err != nil {
			return abort{err}
		}
		return nil
	}
	since, err := o.Outbox[0].At.MarshalBinary()
	if err == nil {
		err = pending.Put([]byte(o.ID), since)
	}
	if err != nil {
		return abort{err}
	}
	return nil
}

// index gives a new order its sequence number, and moves an order whose
// status changed to its new place in the status index.
func index(tx *bbolt.Tx, o domain.Order) error {
	places, byStatus := tx.Bucket(bucketPlaces), tx.Bucket(bucketByStatus)
	id := []byte(o.ID)
	var seq uint64
	if p := places.Get(id); p != nil {
		seq = binary.BigEndian.Uint64(p[:8])
		old := string(p[8:])
		if old == o.Status {
			return nil
		}
		if err := byStatus.Delete(statusKey(old, seq)); err != nil {
			return err
		}
	} else {
		bySeq := tx.Bucket(bucketBySeq)
		var err error
		if seq, err = bySeq.NextSequence(); err != nil {
			return err
		}
		if err := bySeq.Put(binary.BigEndian.AppendUint64(nil, seq), id); err != nil {
			return err
		}
	}
	if err := byStatus.Put(statusKey(o.Status, seq), id); err != nil {
		return err
	}
	return places.Put(id, append(binary.BigEndian.AppendUint64(nil, seq), o.Status...))
}

func statusKey(status string, seq uint64) []byte {
	k := append([]byte(status), 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// encodeOrder writes an order as orderRecord reads it. The outbox is
// written by hand, each event as the JSON it already is: json.Marshal would
// scan and compact every event again on every write of the order.
func encodeOrder(o domain.Order) ([]byte, error) {
	buf := heads.Get().(*bytes.Buffer)
	defer heads.Put(buf)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(o); err != nil { // everything but the outbox (json:"-")
		return nil, fmt.Errorf("encode order %s: %w", o.ID, err)
	}
	head := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	size := len(head) + 16
	for _, m := range o.Outbox {
		size += len(m.Data) + len(m.Legacy) + 320
	}
	b := make([]byte, 0, size)
	if len(o.Outbox) == 0 {
		return append(b, head...), nil
	}
	b = append(b, head[:len(head)-1]...) // without its closing brace
	b = append(b, `,"outbox":[`...)
	var err error
	for i, m := range o.Outbox {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendMessage(b, m); err != nil {
			return nil, fmt.Errorf("encode order %s: %w", o.ID, err)
		}
	}
	return append(b, "]}"...), nil
}

// appendMessage writes m as a messageRecord.
func appendMessage(b []byte, m domain.Message) ([]byte, error) {
	at, err := m.At.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b = append(b, `{"id":`...)
	b = appendString(b, m.ID)
	if m.Type != "" {
		b = appendString(append(b, `,"type":`...), m.Type)
		b = appendString(append(b, `,"source":`...), m.Source)
		b = appendString(append(b, `,"eventId":`...), m.EventID)
	}
	if m.Data != "" {
		b = append(append(b, `,"data":`...), m.Data...)
	}
	if m.Legacy != "" {
		b = append(append(b, `,"event":`...), m.Legacy...)
	}
	if m.Release != 0 {
		b = strconv.AppendInt(append(b, `,"release":`...), m.Release, 10)
	}
	if m.Settle != 0 {
		b = strconv.AppendInt(append(b, `,"settle":`...), m.Settle, 10)
	}
	b = append(append(b, `,"at":`...), at...)
	if m.TraceParent != "" {
		b = appendString(append(b, `,"traceparent":`...), m.TraceParent)
	}
	if m.TraceState != "" {
		b = appendString(append(b, `,"tracestate":`...), m.TraceState)
	}
	return append(b, '}'), nil
}

// heads holds buffers for encodeOrder, grown to the size of orders already.
var heads = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 4096)) }}

// appendString appends s as a JSON string: as it is between quotes if it
// needs no escaping (ids, trace contexts), else as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

func get(tx *bbolt.Tx, bucket []byte, id, what string, v any) error {
	raw := tx.Bucket(bucket).Get([]byte(id))
	if raw == nil {
		return domain.Errorf(domain.KindNotFound, "%s %s not found", what, id)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s %s: %w", what, id, err)
	}
	return nil
}

func put(tx *bbolt.Tx, bucket []byte, id string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", id, err)
	}
	return tx.Bucket(bucket).Put([]byte(id), raw)
}

// CreateCustomer stores a new customer; an existing id is a conflict.
func (s *Store) CreateCustomer(_ context.Context, c domain.Customer) (domain.Customer, error) {
	err := s.w.do(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketCustomers).Get([]byte(c.ID)) != nil {
			return domain.Errorf(domain.KindConflict, "customer %s already exists", c.ID)
		}
		return s.txPutCustomer(tx, c, nil)
	})
	return c, err
}

// Customer returns a customer.
func (s *Store) Customer(_ context.Context, id string) (c domain.Customer, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		c, _, err = getCustomer(tx, id)
		return err
	})
	return c, err
}

// UpdateCustomer runs fn on a copy of a customer and stores the copy, in one
// transaction; if fn fails nothing is stored and the customer as read is
// returned.
func (s *Store) UpdateCustomer(_ context.Context, id string, fn func(*domain.Customer) error) (c domain.Customer, err error) {
	err = s.w.do(func(tx *bbolt.Tx) error {
		var was []held
		if c, was, err = s.txCustomer(tx, id); err != nil {
			return err
		}
		changed := c
		changed.Reservations = slices.Clone(c.Reservations)
		if err := fn(&changed); err != nil {
			return err
		}
		c = changed
		return s.txPutCustomer(tx, c, was)
	})
	return c, err
}

// ChangeCredit makes ch in one transaction of the single writer.
func (s *Store) ChangeCredit(ctx context.Context, ch domain.CreditChange) (domain.Customer, error) {
	return s.UpdateCustomer(ctx, ch.CustomerID, func(c *domain.Customer) error {
		_, err := c.Apply(ch)
		return err
	})
}

// CreateOrder stores o unless it exists. It is encoded before it goes to
// the writer, as UpdateOrder does.
func (s *Store) CreateOrder(_ context.Context, o domain.Order) (stored domain.Order, created bool, err error) {
	raw, err := encodeOrder(o)
	if err != nil {
		return o, false, err
	}
	err = s.w.do(func(tx *bbolt.Tx) error {
		existing, err := s.txOrder(tx, o.ID)
		switch {
		case err == nil:
			stored = existing
			return nil
		case domain.KindOf(err) != domain.KindNotFound:
			return err
		}
		stored, created = o, true
		return s.txPutEncoded(tx, o, raw)
	})
	return stored, created, err
}

// Order returns an order.
func (s *Store) Order(_ context.Context, id string) (o domain.Order, err error) {
	if o, _, ok := s.cache.get(id); ok {
		return o, nil
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		o, err = getOrder(tx, id)
		return err
	})
	return o, err
}

// errStale says an order changed after the unit of work read it.
var errStale = errors.New("order changed meanwhile")

// UpdateOrder runs fn on an order atomically. For an order in the cache
// (one in the works), fn runs and the result is encoded in the caller's
// goroutine, on the cached version; the writer then stores it only if that
// is still the order's version, and the caller tries again if not. So the
// writer, which every write goes through, only checks and stores bytes,
// and the domain's work and the JSON run on every core. An order not in
// the cache is read, changed and stored inside the writer's transaction.
func (s *Store) UpdateOrder(_ context.Context, id string, fn func(*domain.Order) error) (domain.Order, error) {
	for range 3 {
		base, n, ok := s.cache.get(id)
		if !ok {
			break
		}
		changed := own(base)
		if err := fn(&changed); err != nil {
			if s.cache.number(id) != n {
				continue // decided on a version that is gone: again
			}
			return base, err
		}
		raw, err := encodeOrder(changed)
		if err != nil {
			return base, err
		}
		err = s.w.do(func(tx *bbolt.Tx) error {
			if s.txNumber(id) != n {
				return errStale
			}
			return s.txPutEncoded(tx, changed, raw)
		})
		switch {
		case errors.Is(err, errStale):
			continue
		case err != nil:
			return base, err
		}
		return changed, nil
	}
	var o domain.Order
	err := s.w.do(func(tx *bbolt.Tx) (err error) {
		if o, err = s.txOrder(tx, id); err != nil {
			return err
		}
		changed := own(o)
		if err := fn(&changed); err != nil {
			return err
		}
		o = changed
		return s.txPutOrder(tx, o)
	})
	return o, err
}

// Orders returns a page of orders in the order they were recorded, read
// through the indexes: a page costs its own orders, however many are stored.
func (s *Store) Orders(_ context.Context, q domain.OrderQuery) (page domain.OrderPage, err error) {
	if q.Limit < 1 {
		return page, domain.Errorf(domain.KindInvalid, "limit must be 1 or more, got %d", q.Limit)
	}
	after := uint64(0)
	if q.After != "" {
		if after, err = strconv.ParseUint(q.After, 10, 64); err != nil {
			return page, domain.Errorf(domain.KindInvalid, "after: %q is not a cursor this store gave out", q.After)
		}
	}
	bucket, prefix := bucketBySeq, []byte(nil)
	if q.Status != "" {
		bucket, prefix = bucketByStatus, append([]byte(q.Status), 0)
	}
	var last uint64
	err = s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, id := c.Seek(binary.BigEndian.AppendUint64(slices.Clone(prefix), after+1)); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
			if len(page.Orders) == q.Limit {
				// More follow: the next page starts after the last one
				// here, so an order that enters this state meanwhile with
				// a number in between is on it.
				page.Next = strconv.FormatUint(last, 10)
				return nil
			}
			o, err := s.readOrder(tx, string(id))
			if err != nil {
				return err
			}
			page.Orders = append(page.Orders, o)
			last = binary.BigEndian.Uint64(k[len(prefix):])
		}
		return nil
	})
	return page, err
}

// Pending lists the orders with undelivered messages, longest waiting first.
func (s *Store) Pending(_ context.Context, limit int) ([]string, error) {
	return s.pending(time.Time{}, limit)
}

// Delivered removes delivered messages from an order's outbox; an order
// gone, or messages removed already, are no error.
func (s *Store) Delivered(ctx context.Context, orderID string, ids []string) error {
	_, err := s.UpdateOrder(ctx, orderID, func(o *domain.Order) error {
		o.Delivered(ids...)
		return nil
	})
	if domain.KindOf(err) == domain.KindNotFound {
		return nil
	}
	return err
}

// Abandoned lists the orders whose oldest message was written before
// before. This process is the store's only user, so there is nobody to
// claim them from, and lease has nothing to do.
func (s *Store) Abandoned(_ context.Context, before time.Time, _ time.Duration, limit int) ([]string, error) {
	return s.pending(before, limit)
}

// pending lists the orders with messages older than before (all of them
// for the zero time), the longest waiting first, at most limit (> 0).
func (s *Store) pending(before time.Time, limit int) ([]string, error) {
	type entry struct {
		id    string
		since time.Time
	}
	var all []entry
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			e := entry{id: string(k)}
			if err := e.since.UnmarshalBinary(v); err != nil {
				return fmt.Errorf("decode pending order %s: %w", k, err)
			}
			if before.IsZero() || e.since.Before(before) {
				all = append(all, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list pending orders: %w", err)
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.since.UnixNano(), b.since.UnixNano()) })
	if limit <= 0 || limit > len(all) {
		limit = len(all)
	}
	ids := make([]string, 0, limit)
	for _, e := range all[:limit] {
		ids = append(ids, e.id)
	}
	return ids, nil
}
