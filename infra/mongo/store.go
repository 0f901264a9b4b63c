// Package mongo is the MongoDB store (MONGODB_URI). It keeps no rule of its
// own: a unit of work reads a document, runs the domain function on it, and
// replaces the document only if its version is still the one read (a
// single-document conditional write, which MongoDB makes atomic), trying
// again from a fresh read when another writer came first. An order's outbox
// lives in the order's own document (a per-aggregate outbox): MongoDB has no
// multi-document transaction without a replica set, and this way a state
// change and the events it emits are still one write.
//
// Collections, in the database named by MONGODB_DATABASE:
//
//	customers  _id = customer id; name, creditLimit, availableCredit (cents),
//	           reservations [{orderId, amount}], createdAt, updatedAt, version
//	orders     _id = order id; customerId, items, amount (cents), status,
//	           reason, reserved, refused, createdAt, updatedAt, history
//	           [{status, by, reason, event, at}], outbox [{id, event,
//	           release, settle, at, traceparent, tracestate}], pendingSince
//	           (the oldest outbox message), relayUntil and relayOwner (who
//	           delivers it, until when), absent when the outbox is empty;
//	           version
//	           indexes status_1_createdAt_1, createdAt_1, pendingSince_1
//
// Values from requests are only ever values in filters and updates, never
// field names or operators (ids are also restricted to [A-Za-z0-9_-]).
package mongo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Collection names.
const (
	CollCustomers = "customers"
	CollOrders    = "orders"
)

// ConnectTimeout bounds each attempt to reach MongoDB.
const ConnectTimeout = 10 * time.Second

// Store keeps customers and orders (with their outboxes) in MongoDB.
type Store struct {
	client    *mongo.Client
	customers *mongo.Collection
	orders    *mongo.Collection
	hosts     string
	// missing is what the store still lacks (MongoDB unreachable, indexes
	// not created), nil once it is prepared.
	missing  atomic.Pointer[error]
	prepared chan struct{}
	stop     context.CancelFunc
	lease    time.Duration
	owner    string
	opened   time.Time
}

var _ domain.Store = (*Store)(nil)

// versioned is a document as read: the record and its version.
type versioned[T any] struct {
	Value   T     `bson:",inline"`
	Version int64 `bson:"version"`
}

// orderDoc is an order as stored.
type orderDoc struct {
	domain.Order `bson:",inline"`
	Version      int64      `bson:"version"`
	PendingSince *time.Time `bson:"pendingSince,omitempty"`
	RelayUntil   *time.Time `bson:"relayUntil,omitempty"`
	RelayOwner   string     `bson:"relayOwner,omitempty"`
}

// newOrderDoc is the document of o. An outbox written is its writer's to
// deliver for the lease: until relayUntil nobody else takes it over
// (Abandoned).
func (s *Store) newOrderDoc(o domain.Order, version int64) any {
	d := orderDoc{Order: o, Version: version}
	if len(o.Outbox) > 0 {
		until := time.Now().UTC().Add(s.lease)
		d.PendingSince, d.RelayUntil, d.RelayOwner = &o.Outbox[0].At, &until, s.owner
	}
	return d
}

func newCustomerDoc(c domain.Customer, version int64) any {
	return versioned[domain.Customer]{Value: c, Version: version}
}

// Options are the store's optional settings.
type Options struct {
	// OnCommand, if set, is called with the name of every command the
	// driver sends (find, update, insert, ...): what the store costs.
	OnCommand func(name string)
	// Lease is how long the writer of an outbox has it to itself before
	// Abandoned offers it to others (default 15 s).
	Lease time.Duration
	// Owner names this process in the leases it holds (default: the host
	// name). A process that comes back under its old name (a StatefulSet
	// pod, KAFKA_INSTANCE_ID) takes back at once what it wrote before.
	Owner string
}

// Open returns the store of the MongoDB at uri. It does not wait for
// MongoDB: it keeps trying to reach it and to create the indexes in the
// background, with backoff, and until both are done Ping says what is
// missing (so readiness does) and commands fail or wait as the driver's
// server selection does. Its errors name the URI's hosts, never its
// credentials.
func Open(uri, database string, opt Options) (*Store, error) {
	hosts := Hosts(uri)
	if database == "" {
		return nil, errors.New("MongoDB database name must not be empty (MONGODB_DATABASE)")
	}
	opts := options.Client().ApplyURI(uri).
		SetAppName("cupcake-factory").
		SetConnectTimeout(ConnectTimeout).
		SetServerSelectionTimeout(ConnectTimeout).
		// Empty lists are [] not null: $push needs an array, and people read them.
		SetBSONOptions(&options.BSONOptions{NilSliceAsEmpty: true})
	if opt.OnCommand != nil {
		opts.SetMonitor(&event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			opt.OnCommand(e.CommandName)
		}})
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("MONGODB_URI (host %s) is not a usable MongoDB connection string: %s", hosts, redact(err, uri))
	}
	db := client.Database(database)
	s := &Store{
		client:    client,
		customers: db.Collection(CollCustomers),
		orders:    db.Collection(CollOrders),
		hosts:     hosts,
		prepared:  make(chan struct{}),
		lease:     opt.Lease,
		owner:     opt.Owner,
		opened:    time.Now().UTC(),
	}
	if s.lease <= 0 {
		s.lease = 15 * time.Second
	}
	if s.owner == "" {
		s.owner, _ = os.Hostname()
	}
	notYet := fmt.Errorf("MongoDB at %s: not reached yet", hosts)
	s.missing.Store(&notYet)
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go s.prepare(ctx, uri)
	return s, nil
}

// prepare reaches MongoDB and creates the indexes, trying again with
// backoff (100 ms doubling up to 5 s) until both are done. Several
// processes starting at once each create what is missing; one that fails
// because another created an index first finds it there the next time.
func (s *Store) prepare(ctx context.Context, uri string) {
	defer close(s.prepared)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.client.Ping(pingCtx, readpref.Primary())
		cancel()
		if err != nil {
			err = fmt.Errorf("MongoDB at %s is unreachable or refused the connection (attempt %d): %s", s.hosts, attempt, redact(err, uri))
		} else if err = s.createIndexes(ctx); err != nil {
			err = fmt.Errorf("MongoDB at %s: indexes not created yet (attempt %d): %s", s.hosts, attempt, redact(err, uri))
		}
		if err == nil {
			s.missing.Store(nil)
			return
		}
		s.missing.Store(&err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// WaitPrepared waits until MongoDB was reached and the indexes exist, or
// ctx ends (then it returns what is missing).
func (s *Store) WaitPrepared(ctx context.Context) error {
	select {
	case <-s.prepared:
	case <-ctx.Done():
	}
	if err := s.missing.Load(); err != nil {
		return *err
	}
	return nil
}

// orderIndexes are the indexes of the orders collection, by name: a
// station's queue (status, oldest first), the list of all orders (oldest
// first) and the relay's pending outboxes. Customers need only their unique
// _id, which decides the race between two creations of one customer.
var orderIndexes = []struct {
	name string
	keys bson.D
}{
	{"status_1_createdAt_1", bson.D{{Key: "status", Value: 1}, {Key: "createdAt", Value: 1}}},
	{"createdAt_1", bson.D{{Key: "createdAt", Value: 1}}},
	{"pendingSince_1", bson.D{{Key: "pendingSince", Value: 1}}},
}

// createIndexes creates the indexes that do not exist yet. (MongoDB accepts
// creating an existing index again; FerretDB v1 fails on it.)
func (s *Store) createIndexes(ctx context.Context) error {
	specs, err := s.orders.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("list indexes of %s: %w", CollOrders, err)
	}
	have := map[string]bool{}
	for _, sp := range specs {
		have[sp.Name] = true
	}
	var missing []mongo.IndexModel
	for _, ix := range orderIndexes {
		if !have[ix.name] {
			missing = append(missing, mongo.IndexModel{Keys: ix.keys, Options: options.Index().SetName(ix.name)})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := s.orders.Indexes().CreateMany(ctx, missing); err != nil {
		return fmt.Errorf("create indexes of %s: %w", CollOrders, err)
	}
	return nil
}

// Hosts returns the host list of a MongoDB URI ("h1:27017,h2:27017"),
// without scheme, credentials, database or options, for messages.
func Hosts(uri string) string {
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if rest == "" {
		return "(no host in MONGODB_URI)"
	}
	return rest
}

// redact removes the URI's userinfo from a driver error, in case it quotes it.
func redact(err error, uri string) string {
	msg := err.Error()
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		userinfo := rest[:i]
		msg = strings.ReplaceAll(msg, userinfo, "***")
		if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "***")
		}
	}
	return msg
}

// Close disconnects.
func (s *Store) Close() error {
	s.stop()
	<-s.prepared
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

// Ping reports whether the primary answers and the store is prepared;
// if not, what is missing.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.missing.Load(); err != nil {
		return *err
	}
	return s.client.Ping(ctx, readpref.Primary())
}

// CreateCustomer stores a new customer; an existing id is a conflict.
func (s *Store) CreateCustomer(ctx context.Context, c domain.Customer) (domain.Customer, error) {
	_, err := s.customers.InsertOne(ctx, newCustomerDoc(c, 1))
	switch {
	case mongo.IsDuplicateKeyError(err):
		return c, domain.Errorf(domain.KindConflict, "customer %s already exists", c.ID)
	case err != nil:
		return c, fmt.Errorf("mongodb: insert customer %s: %w", c.ID, err)
	}
	return c, nil
}

// Customer returns a customer.
func (s *Store) Customer(ctx context.Context, id string) (domain.Customer, error) {
	v, err := find[domain.Customer](ctx, s.customers, id, "customer")
	return v.Value, err
}

// UpdateCustomer runs fn on a customer as one version-checked write.
func (s *Store) UpdateCustomer(ctx context.Context, id string, fn func(*domain.Customer) error) (domain.Customer, error) {
	return update(ctx, s.customers, id, "customer", fn, newCustomerDoc)
}

// CreateOrder stores o unless an order with its id exists (the unique _id
// decides a race).
func (s *Store) CreateOrder(ctx context.Context, o domain.Order) (domain.Order, bool, error) {
	_, err := s.orders.InsertOne(ctx, s.newOrderDoc(o, 1))
	switch {
	case err == nil:
		return o, true, nil
	case !mongo.IsDuplicateKeyError(err):
		return o, false, fmt.Errorf("mongodb: insert order %s: %w", o.ID, err)
	}
	existing, err := s.Order(ctx, o.ID)
	return existing, false, err
}

// Order returns an order.
func (s *Store) Order(ctx context.Context, id string) (domain.Order, error) {
	v, err := find[domain.Order](ctx, s.orders, id, "order")
	return v.Value, err
}

// UpdateOrder runs fn on an order as one version-checked write.
func (s *Store) UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error) {
	return update(ctx, s.orders, id, "order", fn, s.newOrderDoc)
}

// find reads the document with _id id from coll; a missing one is a
// not-found error naming what it is.
func find[T any](ctx context.Context, coll *mongo.Collection, id, what string) (versioned[T], error) {
	var v versioned[T]
	raw, err := findRaw(ctx, coll, id, what)
	if err == nil {
		err = decode(raw, &v, what, id)
	}
	return v, err
}

func findRaw(ctx context.Context, coll *mongo.Collection, id, what string) (bson.Raw, error) {
	raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, domain.Errorf(domain.KindNotFound, "%s %s not found", what, id)
	case err != nil:
		return nil, fmt.Errorf("mongodb: find %s %s: %w", what, id, err)
	}
	return raw, nil
}

func decode(raw bson.Raw, v any, what, id string) error {
	if err := bson.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("mongodb: decode %s %s: %w", what, id, err)
	}
	return nil
}

// update is the unit of work: read, run fn on a copy, and replace the
// document only if its version is still the one read; otherwise read again,
// for as long as ctx lasts: a healthy store always lets one writer through.
func update[T any](ctx context.Context, coll *mongo.Collection, id, what string, fn func(*T) error, doc func(T, int64) any) (T, error) {
	for attempt := 0; ; attempt++ {
		var read, changed versioned[T] // changed: a copy fn may change freely
		raw, err := findRaw(ctx, coll, id, what)
		if err == nil {
			err = errors.Join(decode(raw, &read, what, id), decode(raw, &changed, what, id))
		}
		if err != nil {
			return read.Value, err
		}
		if err := fn(&changed.Value); err != nil {
			return read.Value, err
		}
		r, err := coll.ReplaceOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "version", Value: read.Version}},
			doc(changed.Value, read.Version+1))
		if err != nil {
			return read.Value, fmt.Errorf("mongodb: write %s %s: %w", what, id, err)
		}
		if r.MatchedCount == 1 {
			return changed.Value, nil
		}
		if err := backoff(ctx, attempt); err != nil {
			return read.Value, fmt.Errorf("mongodb: write %s %s: %w", what, id, err)
		}
	}
}

// backoff waits before another attempt after a collision: a little, more
// each time up to 50 ms, with jitter, so that writers of one hot document
// do not keep colliding.
func backoff(ctx context.Context, attempt int) error {
	limit := min(time.Duration(attempt+1)*time.Millisecond, 50*time.Millisecond)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(limit))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ChangeCredit makes ch as one conditional findOneAndUpdate: the change's
// condition is the filter and its change the update, which MongoDB applies
// atomically to the one document, so the orders of a busy customer never
// collide. When nothing matched, the customer as it is tells why: the
// change was made already (no error), it cannot be made (the domain's
// error), or another change came between (try again).
func (s *Store) ChangeCredit(ctx context.Context, ch domain.CreditChange) (domain.Customer, error) {
	filter := bson.D{{Key: "_id", Value: ch.CustomerID}}
	if ch.MinAvailable > 0 {
		filter = append(filter, bson.E{Key: "availableCredit", Value: bson.D{{Key: "$gte", Value: ch.MinAvailable}}})
	}
	// The forms below are the ones FerretDB v1 gets right too ($ne on a
	// path into an array and $elemMatch it does not): no reservation of
	// the order; a reservation equal to {orderId, amount}.
	if ch.Unheld {
		filter = append(filter, bson.E{Key: "$nor", Value: bson.A{bson.D{{Key: "reservations.orderId", Value: ch.OrderID}}}})
	}
	if ch.Held > 0 {
		filter = append(filter, bson.E{Key: "reservations", Value: bson.D{{Key: "$all", Value: bson.A{
			domain.Reservation{OrderID: ch.OrderID, Amount: ch.Held}}}}})
	}
	change := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "availableCredit", Value: ch.Add}, {Key: "version", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: time.Now().UTC().Truncate(time.Millisecond)}}},
	}
	if ch.Hold > 0 {
		change = append(change, bson.E{Key: "$push", Value: bson.D{{Key: "reservations", Value: domain.Reservation{OrderID: ch.OrderID, Amount: ch.Hold}}}})
	}
	if ch.Unhold {
		// The exact element the filter matched ($pull with a condition is
		// what FerretDB v1 lacks).
		change = append(change, bson.E{Key: "$pullAll", Value: bson.D{{Key: "reservations", Value: bson.A{domain.Reservation{OrderID: ch.OrderID, Amount: ch.Held}}}}})
	}
	for attempt := 0; ; attempt++ {
		var c domain.Customer
		err := s.customers.FindOneAndUpdate(ctx, filter, change, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&c)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return c, fmt.Errorf("mongodb: change credit of customer %s for order %s: %w", ch.CustomerID, ch.OrderID, err)
		}
		if c, err = s.Customer(ctx, ch.CustomerID); err != nil {
			return c, err
		}
		if apply, err := c.Check(ch); !apply || err != nil {
			return c, err
		}
		if err := backoff(ctx, attempt); err != nil {
			return c, fmt.Errorf("mongodb: change credit of customer %s for order %s: %w", ch.CustomerID, ch.OrderID, err)
		}
	}
}

// Orders returns a page of orders, oldest first by (createdAt, _id),
// through the indexes status_1_createdAt_1 and createdAt_1. The cursor is
// the last order's creation time and id. Orders recorded by several writers
// at once can commit out of creation order; one that commits behind a page
// already read, with an earlier creation time, is not met by that paging
// (the embedded store numbers orders at commit and has no such gap).
func (s *Store) Orders(ctx context.Context, q domain.OrderQuery) (domain.OrderPage, error) {
	var page domain.OrderPage
	if q.Limit < 1 {
		return page, domain.Errorf(domain.KindInvalid, "limit must be 1 or more, got %d", q.Limit)
	}
	filter := bson.D{}
	if q.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: q.Status})
	}
	if q.After != "" {
		at, id, err := parseCursor(q.After)
		if err != nil {
			return page, err
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "createdAt", Value: bson.D{{Key: "$gt", Value: at}}}},
			bson.D{{Key: "createdAt", Value: at}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: id}}}},
		}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(q.Limit) + 1)
	cur, err := s.orders.Find(ctx, filter, opts)
	if err != nil {
		return page, fmt.Errorf("mongodb: list orders: %w", err)
	}
	if err := cur.All(ctx, &page.Orders); err != nil {
		return page, fmt.Errorf("mongodb: list orders: %w", err)
	}
	if len(page.Orders) > q.Limit {
		page.Orders = page.Orders[:q.Limit]
		last := page.Orders[q.Limit-1]
		page.Next = strconv.FormatInt(last.CreatedAt.UnixMilli(), 10) + "." + last.ID
	}
	return page, nil
}

// parseCursor reads a cursor Orders gave out: milliseconds, a dot, an id.
func parseCursor(c string) (time.Time, string, error) {
	ms, id, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", domain.Errorf(domain.KindInvalid, "after: %q is not a cursor this store gave out", c)
	}
	return time.UnixMilli(n).UTC(), id, nil
}

// Delivered removes delivered messages. When they are the whole outbox
// (the relay delivered everything), one conditional update empties it;
// otherwise, or if the outbox changed meanwhile, the unit of work does.
func (s *Store) Delivered(ctx context.Context, orderID string, ids []string) error {
	// Each id by itself ($all on a path into an array FerretDB v1 lacks).
	each := make(bson.A, len(ids))
	for i, id := range ids {
		each[i] = bson.D{{Key: "outbox.id", Value: id}}
	}
	r, err := s.orders.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: orderID}, {Key: "outbox", Value: bson.D{{Key: "$size", Value: len(ids)}}},
			{Key: "$and", Value: each}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "outbox", Value: bson.A{}}}},
			{Key: "$unset", Value: bson.D{{Key: "pendingSince", Value: ""}, {Key: "relayUntil", Value: ""}, {Key: "relayOwner", Value: ""}}},
			{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}})
	if err != nil {
		return fmt.Errorf("mongodb: remove delivered messages of order %s: %w", orderID, err)
	}
	if r.MatchedCount == 1 {
		return nil
	}
	_, err = s.UpdateOrder(ctx, orderID, func(o *domain.Order) error {
		o.Delivered(ids...)
		return nil
	})
	if domain.KindOf(err) == domain.KindNotFound {
		return nil
	}
	return err
}

// Abandoned finds, through the pendingSince index, orders whose oldest
// message is older than before and whose relay lease (relayUntil) ran out,
// or which this owner wrote before this store opened (its earlier life),
// and claims each with one conditional update that sets a new lease: of
// several replicas looking at once, one wins each order. The next write of
// the order sets its writer's lease.
func (s *Store) Abandoned(ctx context.Context, before time.Time, lease time.Duration, limit int) ([]string, error) {
	now := time.Now().UTC()
	free := bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "relayUntil", Value: bson.D{{Key: "$gt", Value: now}}}}}}},
		// Leased by this owner's earlier life (before this store opened).
		bson.D{{Key: "relayOwner", Value: s.owner}, {Key: "relayUntil", Value: bson.D{{Key: "$lte", Value: s.opened.Add(s.lease)}}}},
	}}
	cur, err := s.orders.Find(ctx,
		bson.D{{Key: "pendingSince", Value: bson.D{{Key: "$lt", Value: before.UTC()}}}, free},
		options.Find().SetSort(bson.D{{Key: "pendingSince", Value: 1}}).SetLimit(int64(limit)).
			SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongodb: list abandoned outboxes: %w", err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongodb: list abandoned outboxes: %w", err)
	}
	var ids []string
	for _, d := range docs {
		r, err := s.orders.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}, free},
			bson.D{{Key: "$set", Value: bson.D{{Key: "relayUntil", Value: now.Add(lease)}, {Key: "relayOwner", Value: s.owner}}}})
		if err != nil {
			return ids, fmt.Errorf("mongodb: claim the outbox of order %s: %w", d.ID, err)
		}
		if r.ModifiedCount == 1 {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}

// Pending lists the orders with undelivered messages, longest waiting first.
func (s *Store) Pending(ctx context.Context, limit int) ([]string, error) {
	opts := options.Find().SetSort(bson.D{{Key: "pendingSince", Value: 1}}).
		SetProjection(bson.D{{Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := s.orders.Find(ctx, bson.D{{Key: "pendingSince", Value: bson.D{{Key: "$exists", Value: true}}}}, opts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: list pending outboxes: %w", err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongodb: list pending outboxes: %w", err)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}
