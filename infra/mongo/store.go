// Package mongo is the MongoDB store (MONGODB_URI). Every change is one
// conditional update of one document, so that any number of functions
// sharing a database never overspend credit or apply a step twice: MongoDB
// makes each single-document update atomic, and the filter of each update
// states what must still be true for it to apply.
//
// Collections, in the database named by MONGODB_DATABASE:
//
//	customers        _id = customer id; name, creditLimit, availableCredit
//	                 (cents), reservations [{orderId, amount}], createdAt,
//	                 updatedAt, reservedOrders [order ids]
//	orders           _id = order id; customerId, items, amount (cents), status,
//	                 reason, createdAt, updatedAt, history [{status, by,
//	                 reason, event, at}], eventKeys [event keys]
//	                 indexes status_1_createdAt_1 and createdAt_1
//	processedEvents  _id = event key (source + id); reply (the reply event as
//	                 JSON text), at. The unique _id makes dedupe race-free.
//
// reservedOrders and eventKeys repeat, as plain strings, the order ids of
// reservations and the event keys of history steps: the conditional updates
// test them with {field: {$ne: value}}, which on an array of strings means
// "no element is value" on MongoDB and FerretDB alike (a test of a field of
// array elements, "history.event", is not handled the same by FerretDB).
//
// Values from requests are only ever values in filters and updates, never
// field names or operators (ids are also restricted to [A-Za-z0-9_-]).
package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Collection names.
const (
	CollCustomers = "customers"
	CollOrders    = "orders"
	CollProcessed = "processedEvents"
)

// ConnectTimeout bounds connecting and the first ping at start-up.
const ConnectTimeout = 10 * time.Second

// maxAttempts bounds the retries of an update whose condition was made false
// by a concurrent change between its read and its write.
const maxAttempts = 20

// Store keeps customers, orders and processed event keys in MongoDB.
type Store struct {
	client    *mongo.Client
	customers *mongo.Collection
	orders    *mongo.Collection
	processed *mongo.Collection
	now       func() time.Time
}

var _ domain.Store = (*Store)(nil)

// customerDoc is a customer as stored.
type customerDoc struct {
	domain.Customer `bson:",inline"`
	ReservedOrders  []string `bson:"reservedOrders"`
}

// orderDoc is an order as stored.
type orderDoc struct {
	domain.Order `bson:",inline"`
	EventKeys    []string `bson:"eventKeys"`
}

// Open connects to the MongoDB at uri, checks that it answers (within
// ConnectTimeout, or ctx's deadline if sooner) and creates the indexes. Its
// errors name the URI's hosts, never its credentials.
func Open(ctx context.Context, uri, database string) (*Store, error) {
	hosts := Hosts(uri)
	if database == "" {
		return nil, errors.New("MongoDB database name must not be empty (MONGODB_DATABASE)")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	opts := options.Client().ApplyURI(uri).
		SetAppName("cupcake-factory").
		SetConnectTimeout(ConnectTimeout).
		SetServerSelectionTimeout(ConnectTimeout).
		// Empty lists are [] not null: $push needs an array, and people read them.
		SetBSONOptions(&options.BSONOptions{NilSliceAsEmpty: true})
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("MONGODB_URI (host %s) is not a usable MongoDB connection string: %s", hosts, redact(err, uri))
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("MongoDB at %s is unreachable or refused the connection (gave up after %s): %s",
			hosts, time.Since(start).Round(100*time.Millisecond), redact(err, uri))
	}
	db := client.Database(database)
	s := &Store{
		client:    client,
		customers: db.Collection(CollCustomers),
		orders:    db.Collection(CollOrders),
		processed: db.Collection(CollProcessed),
		now:       time.Now,
	}
	if err := s.createIndexes(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("MongoDB at %s: %s", hosts, redact(err, uri))
	}
	return s, nil
}

// orderIndexes are the indexes of the orders collection, by name: a
// station's queue (status, oldest first) and the list of all orders (oldest
// first). The other collections need only their unique _id: it decides the
// race between two creations of one customer or order, and makes event
// dedupe race-free.
var orderIndexes = []struct {
	name string
	keys bson.D
}{
	{"status_1_createdAt_1", bson.D{{Key: "status", Value: 1}, {Key: "createdAt", Value: 1}}},
	{"createdAt_1", bson.D{{Key: "createdAt", Value: 1}}},
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

// Ping reports whether the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.client.Ping(ctx, readpref.Primary())
}

func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// CreateCustomer stores a new customer; an existing id is a conflict.
func (s *Store) CreateCustomer(ctx context.Context, c domain.Customer) (domain.Customer, error) {
	doc := customerDoc{Customer: c, ReservedOrders: []string{}}
	for _, r := range c.Reservations {
		doc.ReservedOrders = append(doc.ReservedOrders, r.OrderID)
	}
	_, err := s.customers.InsertOne(ctx, doc)
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
	return findByID[domain.Customer](ctx, s.customers, id, "customer")
}

// findByID reads the document with _id id from coll; a missing one is a
// not-found error naming what it is.
func findByID[T any](ctx context.Context, coll *mongo.Collection, id, what string) (T, error) {
	var v T
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&v)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return v, domain.Errorf(domain.KindNotFound, "%s %s not found", what, id)
	case err != nil:
		return v, fmt.Errorf("mongodb: find %s %s: %w", what, id, err)
	}
	return v, nil
}

// SetCreditLimit changes a customer's credit limit, keeping its
// reservations. The update applies only while the limit is still the one
// read and the available credit still covers the decrease, so it cannot race
// with reservations (which only move availableCredit) or another change.
func (s *Store) SetCreditLimit(ctx context.Context, id string, limit int64) (domain.Customer, error) {
	for range maxAttempts {
		c, err := s.Customer(ctx, id)
		if err != nil {
			return c, err
		}
		old := c.CreditLimit
		if err := c.SetCreditLimit(limit); err != nil {
			return c, err
		}
		filter := bson.D{
			{Key: "_id", Value: id},
			{Key: "creditLimit", Value: old},
			// reserved = creditLimit - availableCredit must stay <= limit
			{Key: "availableCredit", Value: bson.D{{Key: "$gte", Value: old - limit}}},
		}
		update := bson.D{
			{Key: "$set", Value: bson.D{{Key: "creditLimit", Value: limit}, {Key: "updatedAt", Value: s.stamp()}}},
			{Key: "$inc", Value: bson.D{{Key: "availableCredit", Value: limit - old}}},
		}
		var updated domain.Customer
		err = s.customers.FindOneAndUpdate(ctx, filter, update,
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&updated)
		switch {
		case err == nil:
			return updated, nil
		case !errors.Is(err, mongo.ErrNoDocuments):
			return c, fmt.Errorf("mongodb: set credit limit of customer %s: %w", id, err)
		}
		// Changed since read: read again and decide again.
	}
	return domain.Customer{}, fmt.Errorf("mongodb: set credit limit of customer %s: too many concurrent changes", id)
}

// ReserveCredit reserves amount of the customer's credit for orderID, once,
// in one conditional update: it applies only while the credit covers amount
// and the order holds no reservation yet.
func (s *Store) ReserveCredit(ctx context.Context, customerID, orderID string, amount int64) error {
	for range maxAttempts {
		filter := bson.D{
			{Key: "_id", Value: customerID},
			{Key: "availableCredit", Value: bson.D{{Key: "$gte", Value: amount}}},
			{Key: "reservedOrders", Value: bson.D{{Key: "$ne", Value: orderID}}},
		}
		update := bson.D{
			{Key: "$inc", Value: bson.D{{Key: "availableCredit", Value: -amount}}},
			{Key: "$push", Value: bson.D{
				{Key: "reservations", Value: domain.Reservation{OrderID: orderID, Amount: amount}},
				{Key: "reservedOrders", Value: orderID},
			}},
			{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: s.stamp()}}},
		}
		r, err := s.customers.UpdateOne(ctx, filter, update)
		if err != nil {
			return fmt.Errorf("mongodb: reserve credit of customer %s for order %s: %w", customerID, orderID, err)
		}
		if r.MatchedCount == 1 {
			return nil
		}
		// Tell apart why it did not apply.
		c, err := s.Customer(ctx, customerID)
		switch {
		case domain.KindOf(err) == domain.KindNotFound:
			return fmt.Errorf("customer %s: %w", customerID, domain.ErrUnknownCustomer)
		case err != nil:
			return err
		case c.HasReservation(orderID):
			return nil
		case c.Available < amount:
			return c.Reserve(orderID, amount) // the insufficient-credit error
		}
		// Credit was given back between the update and the read: try again.
	}
	return fmt.Errorf("mongodb: reserve credit of customer %s for order %s: too many concurrent changes", customerID, orderID)
}

// ReleaseCredit gives back the credit orderID holds. The update applies
// only while the order still holds credit, so the credit is given back once.
// (An order's reservation is its amount, fixed when the order was created.)
func (s *Store) ReleaseCredit(ctx context.Context, customerID, orderID string) (bool, error) {
	for range maxAttempts {
		c, err := s.Customer(ctx, customerID)
		if err != nil {
			return false, err
		}
		var held *domain.Reservation
		for i := range c.Reservations {
			if c.Reservations[i].OrderID == orderID {
				held = &c.Reservations[i]
				break
			}
		}
		if held == nil {
			return false, nil
		}
		filter := bson.D{
			{Key: "_id", Value: customerID},
			{Key: "reservedOrders", Value: orderID},
		}
		update := bson.D{
			// $pull of the exact element: FerretDB supports no conditions here.
			{Key: "$pull", Value: bson.D{{Key: "reservations", Value: *held}, {Key: "reservedOrders", Value: orderID}}},
			{Key: "$inc", Value: bson.D{{Key: "availableCredit", Value: held.Amount}}},
			{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: s.stamp()}}},
		}
		r, err := s.customers.UpdateOne(ctx, filter, update)
		if err != nil {
			return false, fmt.Errorf("mongodb: release credit of customer %s for order %s: %w", customerID, orderID, err)
		}
		if r.MatchedCount == 1 {
			return true, nil
		}
		// Released (or changed) concurrently: read again.
	}
	return false, fmt.Errorf("mongodb: release credit of customer %s for order %s: too many concurrent changes", customerID, orderID)
}

// CreateOrder stores o unless an order with its id exists (the unique _id
// decides a race); an existing order with other content is a conflict.
func (s *Store) CreateOrder(ctx context.Context, o domain.Order) (domain.Order, bool, error) {
	doc := orderDoc{Order: o, EventKeys: []string{}}
	for _, st := range o.History {
		if st.Event != "" {
			doc.EventKeys = append(doc.EventKeys, st.Event)
		}
	}
	_, err := s.orders.InsertOne(ctx, doc)
	switch {
	case err == nil:
		return o, true, nil
	case !mongo.IsDuplicateKeyError(err):
		return o, false, fmt.Errorf("mongodb: insert order %s: %w", o.ID, err)
	}
	existing, err := s.Order(ctx, o.ID)
	if err != nil {
		return o, false, err
	}
	if !existing.SameContent(o) {
		return existing, false, domain.Errorf(domain.KindConflict, "order %s already exists with another customer or items", o.ID)
	}
	return existing, false, nil
}

// Order returns an order.
func (s *Store) Order(ctx context.Context, id string) (domain.Order, error) {
	return findByID[domain.Order](ctx, s.orders, id, "order")
}

// Orders lists orders in a state (all for ""), oldest first, at most limit
// (all for limit <= 0).
func (s *Store) Orders(ctx context.Context, status string, limit int) ([]domain.Order, error) {
	filter := bson.D{}
	if status != "" {
		filter = bson.D{{Key: "status", Value: status}}
	}
	opts := options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := s.orders.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: list orders: %w", err)
	}
	var out []domain.Order
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("mongodb: list orders: %w", err)
	}
	return out, nil
}

// Advance applies t to an order in one conditional update: it applies only
// while the order is in one of t.From and no step was caused by the same
// event. When it does not apply, the order is read to say why.
func (s *Store) Advance(ctx context.Context, orderID string, t domain.Transition) (domain.Order, error) {
	for range maxAttempts {
		filter := bson.D{
			{Key: "_id", Value: orderID},
			{Key: "status", Value: bson.D{{Key: "$in", Value: t.From}}},
		}
		push := bson.D{{Key: "history", Value: t.Step}}
		if t.Step.Event != "" {
			filter = append(filter, bson.E{Key: "eventKeys", Value: bson.D{{Key: "$ne", Value: t.Step.Event}}})
			push = append(push, bson.E{Key: "eventKeys", Value: t.Step.Event})
		}
		set := bson.D{{Key: "status", Value: t.To}, {Key: "updatedAt", Value: t.Step.At}}
		if t.Step.Reason != "" {
			set = append(set, bson.E{Key: "reason", Value: t.Step.Reason})
		}
		update := bson.D{
			{Key: "$set", Value: set},
			{Key: "$push", Value: push},
		}
		var o domain.Order
		err := s.orders.FindOneAndUpdate(ctx, filter, update,
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&o)
		switch {
		case err == nil:
			return o, nil
		case !errors.Is(err, mongo.ErrNoDocuments):
			return o, fmt.Errorf("mongodb: advance order %s to %s: %w", orderID, t.To, err)
		}
		// Did not apply: say why, with the order as it is.
		o, err = s.Order(ctx, orderID)
		if err != nil {
			return o, err
		}
		probe := o
		switch err := probe.Apply(t); {
		case errors.Is(err, domain.ErrDuplicate):
			return o, fmt.Errorf("order %s: %w", orderID, err)
		case err != nil:
			return o, err
		}
		// It fits now (changed between the update and the read): try again.
	}
	return domain.Order{}, fmt.Errorf("mongodb: advance order %s to %s: too many concurrent changes", orderID, t.To)
}

// processedRecord is a processed event. Reply is the reply event as JSON
// text (readable in mongo-express), or binary if it is not UTF-8.
type processedRecord struct {
	Key   string        `bson:"_id"`
	Reply bson.RawValue `bson:"reply,omitempty"`
	At    time.Time     `bson:"at"`
}

// ProcessedReply returns the reply recorded for an event key.
func (s *Store) ProcessedReply(ctx context.Context, key string) ([]byte, bool, error) {
	var r processedRecord
	err := s.processed.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&r)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("mongodb: find processed event %s: %w", key, err)
	}
	switch r.Reply.Type {
	case bson.TypeString:
		if v := r.Reply.StringValue(); v != "" {
			return []byte(v), true, nil
		}
	case bson.TypeBinary:
		if _, b := r.Reply.Binary(); len(b) > 0 {
			return b, true, nil
		}
	}
	return nil, true, nil
}

// MarkProcessed records that the event with key was handled, and its reply.
// The first record wins: a second one for the same key is ignored.
func (s *Store) MarkProcessed(ctx context.Context, key string, reply []byte) error {
	doc := bson.D{{Key: "_id", Value: key}}
	switch {
	case len(reply) == 0:
	case utf8.Valid(reply):
		doc = append(doc, bson.E{Key: "reply", Value: string(reply)})
	default:
		doc = append(doc, bson.E{Key: "reply", Value: reply})
	}
	doc = append(doc, bson.E{Key: "at", Value: s.stamp()})
	_, err := s.processed.InsertOne(ctx, doc)
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("mongodb: mark event %s processed: %w", key, err)
	}
	return nil
}
