// Package bolt is the embedded store: one bbolt file under DATA_DIR, no
// server, no CGO. Every operation is one bbolt transaction, so each is atomic
// and durable once it returns.
package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// FileName is the name of the database file inside the data directory.
const FileName = "cupcakes.db"

var (
	bucketCustomers = []byte("customers")
	bucketOrders    = []byte("orders")
	bucketProcessed = []byte("processed")
)

// Store keeps customers, orders and processed event keys in a bbolt file.
type Store struct {
	db  *bbolt.DB
	now func() time.Time
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
		for _, b := range [][]byte{bucketCustomers, bucketOrders, bucketProcessed} {
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
	return &Store{db: db, now: time.Now}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the file is open.
func (s *Store) Ping(context.Context) error {
	return s.db.View(func(*bbolt.Tx) error { return nil })
}

func get[T any](tx *bbolt.Tx, bucket []byte, id string, what string) (T, error) {
	var v T
	raw := tx.Bucket(bucket).Get([]byte(id))
	if raw == nil {
		return v, domain.Errorf(domain.KindNotFound, "%s %s not found", what, id)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode %s %s: %w", what, id, err)
	}
	return v, nil
}

func put(tx *bbolt.Tx, bucket []byte, id string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", id, err)
	}
	return tx.Bucket(bucket).Put([]byte(id), raw)
}

// record is how a customer is kept: the domain record plus its reservations,
// which the domain type keeps out of JSON for API responses.
type customerRecord struct {
	domain.Customer
	Reservations []domain.Reservation `json:"reservations"`
}

func getCustomer(tx *bbolt.Tx, id string) (domain.Customer, error) {
	r, err := get[customerRecord](tx, bucketCustomers, id, "customer")
	r.Customer.Reservations = r.Reservations
	return r.Customer, err
}

func putCustomer(tx *bbolt.Tx, c domain.Customer) error {
	return put(tx, bucketCustomers, c.ID, customerRecord{Customer: c, Reservations: c.Reservations})
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

// SetCreditLimit changes a customer's credit limit.
func (s *Store) SetCreditLimit(_ context.Context, id string, limit int64) (c domain.Customer, err error) {
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if c, err = getCustomer(tx, id); err != nil {
			return err
		}
		if err = c.SetCreditLimit(limit); err != nil {
			return err
		}
		c.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
		return putCustomer(tx, c)
	})
	return c, err
}

// ReserveCredit reserves amount of the customer's credit for orderID, once.
func (s *Store) ReserveCredit(_ context.Context, customerID, orderID string, amount int64) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		c, err := getCustomer(tx, customerID)
		if domain.KindOf(err) == domain.KindNotFound {
			return fmt.Errorf("customer %s: %w", customerID, domain.ErrUnknownCustomer)
		}
		if err != nil {
			return err
		}
		if c.HasReservation(orderID) {
			return nil
		}
		if err := c.Reserve(orderID, amount); err != nil {
			return err
		}
		c.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
		return putCustomer(tx, c)
	})
}

// ReleaseCredit gives back the credit orderID holds.
func (s *Store) ReleaseCredit(_ context.Context, customerID, orderID string) (released bool, err error) {
	err = s.db.Update(func(tx *bbolt.Tx) error {
		c, err := getCustomer(tx, customerID)
		if err != nil {
			return err
		}
		if released = c.Release(orderID); !released {
			return nil
		}
		c.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
		return putCustomer(tx, c)
	})
	return released, err
}

// CreateOrder stores o unless it exists.
func (s *Store) CreateOrder(_ context.Context, o domain.Order) (stored domain.Order, created bool, err error) {
	err = s.db.Update(func(tx *bbolt.Tx) error {
		existing, err := get[domain.Order](tx, bucketOrders, o.ID, "order")
		switch {
		case err == nil:
			stored = existing
			if !existing.SameContent(o) {
				return domain.Errorf(domain.KindConflict, "order %s already exists with another customer or items", o.ID)
			}
			return nil
		case domain.KindOf(err) != domain.KindNotFound:
			return err
		}
		stored, created = o, true
		return put(tx, bucketOrders, o.ID, o)
	})
	return stored, created, err
}

// Order returns an order.
func (s *Store) Order(_ context.Context, id string) (o domain.Order, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		o, err = get[domain.Order](tx, bucketOrders, id, "order")
		return err
	})
	return o, err
}

// Orders lists orders in a state, oldest first, at most limit.
func (s *Store) Orders(_ context.Context, status string, limit int) ([]domain.Order, error) {
	var out []domain.Order
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketOrders).ForEach(func(k, v []byte) error {
			var o domain.Order
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("decode order %s: %w", k, err)
			}
			if status == "" || o.Status == status {
				out = append(out, o)
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// Advance applies a transition to an order.
func (s *Store) Advance(_ context.Context, orderID string, t domain.Transition) (o domain.Order, err error) {
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if o, err = get[domain.Order](tx, bucketOrders, orderID, "order"); err != nil {
			return err
		}
		if err = o.Apply(t); err != nil {
			return err
		}
		return put(tx, bucketOrders, o.ID, o)
	})
	if errors.Is(err, domain.ErrDuplicate) {
		return o, fmt.Errorf("order %s: %w", orderID, err)
	}
	return o, err
}

// ProcessedReply returns the reply recorded for an event key.
func (s *Store) ProcessedReply(_ context.Context, key string) (reply []byte, ok bool, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketProcessed).Get([]byte(key))
		if v == nil {
			return nil
		}
		ok = true
		var r processedRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode processed event %s: %w", key, err)
		}
		reply = r.Reply
		return nil
	})
	return reply, ok, err
}

type processedRecord struct {
	Reply []byte    `json:"reply,omitempty"`
	At    time.Time `json:"at"`
}

// MarkProcessed records that the event with key was handled, and its reply.
func (s *Store) MarkProcessed(_ context.Context, key string, reply []byte) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketProcessed).Get([]byte(key)) != nil {
			return nil
		}
		return put(tx, bucketProcessed, key, processedRecord{Reply: reply, At: s.now().UTC()})
	})
}
