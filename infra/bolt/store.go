// Package bolt is the embedded store: one bbolt file under DATA_DIR, no
// server, no CGO. Every unit of work is one bbolt transaction, so each is
// atomic and durable once it returns.
package bolt

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
)

// Store keeps customers and orders (with their outboxes) in a bbolt file.
type Store struct {
	db *bbolt.DB
}

var _ domain.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open embedded store %s (is another process using it?): %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketCustomers, bucketOrders, bucketPending} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init embedded store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the file is open.
func (s *Store) Ping(context.Context) error {
	return s.db.View(func(*bbolt.Tx) error { return nil })
}

// The domain types keep reservations and the outbox out of their JSON (the
// API's answers); the records add them back for storage.
type customerRecord struct {
	domain.Customer
	Reservations []domain.Reservation `json:"reservations"`
}

type orderRecord struct {
	domain.Order
	Outbox []domain.Message `json:"outbox,omitempty"`
}

func getCustomer(tx *bbolt.Tx, id string) (c domain.Customer, err error) {
	var r customerRecord
	err = get(tx, bucketCustomers, id, "customer", &r)
	r.Customer.Reservations = r.Reservations
	return r.Customer, err
}

func putCustomer(tx *bbolt.Tx, c domain.Customer) error {
	return put(tx, bucketCustomers, c.ID, customerRecord{Customer: c, Reservations: c.Reservations})
}

func getOrder(tx *bbolt.Tx, id string) (domain.Order, error) {
	var r orderRecord
	err := get(tx, bucketOrders, id, "order", &r)
	r.Order.Outbox = r.Outbox
	return r.Order, err
}

// putOrder stores o and keeps the pending index in step with its outbox.
func putOrder(tx *bbolt.Tx, o domain.Order) error {
	if err := put(tx, bucketOrders, o.ID, orderRecord{Order: o, Outbox: o.Outbox}); err != nil {
		return err
	}
	pending := tx.Bucket(bucketPending)
	if len(o.Outbox) == 0 {
		return pending.Delete([]byte(o.ID))
	}
	since, err := o.Outbox[0].At.MarshalBinary()
	if err != nil {
		return err
	}
	return pending.Put([]byte(o.ID), since)
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
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketCustomers).Get([]byte(c.ID)) != nil {
			return domain.Errorf(domain.KindConflict, "customer %s already exists", c.ID)
		}
		return putCustomer(tx, c)
	})
	return c, err
}

// Customer returns a customer.
func (s *Store) Customer(_ context.Context, id string) (c domain.Customer, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		c, err = getCustomer(tx, id)
		return err
	})
	return c, err
}

// UpdateCustomer runs fn on a customer in one transaction.
func (s *Store) UpdateCustomer(_ context.Context, id string, fn func(*domain.Customer) error) (domain.Customer, error) {
	return update(s.db, id, getCustomer, putCustomer, fn, func(c *domain.Customer) {
		c.Reservations = slices.Clone(c.Reservations)
	})
}

// update is the unit of work: read, run fn on a copy (own gives it slices of its own)
// and store the copy, all in one transaction; if fn fails
// nothing is stored and the record as read is returned.
func update[T any](db *bbolt.DB, id string, get func(*bbolt.Tx, string) (T, error), put func(*bbolt.Tx, T) error,
	fn func(*T) error, own func(*T)) (v T, err error) {
	err = db.Update(func(tx *bbolt.Tx) error {
		if v, err = get(tx, id); err != nil {
			return err
		}
		changed := v
		own(&changed)
		if err := fn(&changed); err != nil {
			return err
		}
		v = changed
		return put(tx, v)
	})
	return v, err
}

// CreateOrder stores o unless it exists.
func (s *Store) CreateOrder(_ context.Context, o domain.Order) (stored domain.Order, created bool, err error) {
	err = s.db.Update(func(tx *bbolt.Tx) error {
		existing, err := getOrder(tx, o.ID)
		switch {
		case err == nil:
			stored = existing
			return nil
		case domain.KindOf(err) != domain.KindNotFound:
			return err
		}
		stored, created = o, true
		return putOrder(tx, o)
	})
	return stored, created, err
}

// Order returns an order.
func (s *Store) Order(_ context.Context, id string) (o domain.Order, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		o, err = getOrder(tx, id)
		return err
	})
	return o, err
}

// UpdateOrder runs fn on an order in one transaction.
func (s *Store) UpdateOrder(_ context.Context, id string, fn func(*domain.Order) error) (domain.Order, error) {
	return update(s.db, id, getOrder, putOrder, fn, func(o *domain.Order) {
		o.History, o.Outbox = slices.Clone(o.History), slices.Clone(o.Outbox)
	})
}

// Orders lists orders in a state, oldest first, at most limit.
func (s *Store) Orders(_ context.Context, status string, limit int) ([]domain.Order, error) {
	var out []domain.Order
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketOrders).ForEach(func(k, v []byte) error {
			var r orderRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode order %s: %w", k, err)
			}
			r.Order.Outbox = r.Outbox
			if status == "" || r.Status == status {
				out = append(out, r.Order)
			}
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b domain.Order) int { return a.CreatedAt.Compare(b.CreatedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// Pending lists the orders with undelivered messages, longest waiting first.
func (s *Store) Pending(_ context.Context, limit int) ([]string, error) {
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
			all = append(all, e)
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
