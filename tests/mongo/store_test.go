// Package mongo_test runs the store conformance suite against the MongoDB
// store (infra/mongo) on a real MongoDB wire-protocol server: FerretDB v1,
// embedded, SQLite underneath, started by the test behind the harness's
// proxy (tests/internal/ferret).
//
// What this proves: every unit of work and edge case behaves on the MongoDB
// store exactly as on the embedded store, through the real driver, real
// BSON, real queries, indexes, version-checked replaces and duplicate-key
// errors; that a change and the messages it emits are one document write;
// that messages written before a crash are still pending for a new client
// and the relay delivers them; that concurrent verdicts and reservations
// keep the money rule (the suite's Concurrency tests); and that the
// documents have the shape people read in mongo-express.
//
// The concurrency proof rests on single-document atomicity, which MongoDB
// guarantees and the store relies on (each unit of work is one replace
// conditional on the version read). FerretDB v1.24.2 alone does not give
// it: it reads, modifies and writes back the whole document without
// checking the filter again, so concurrent updates of one document can be
// lost. The harness's proxy runs write commands one at a time, which gives
// it back; see the ferret package doc.
package mongo_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/relay/relaytest"
	"github.com/cupcake-factory/cupcake-factory/infra/mongo"
	"github.com/cupcake-factory/cupcake-factory/infra/storetest"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/ferret"
)

// opener returns a storetest.Open that gives each test a new database on
// the server at uri. Reopening connects a new client to the same database,
// as a restarted process does.
func opener(uri string) storetest.Open {
	var n atomic.Int64
	return func(t *testing.T) (domain.Store, func() domain.Store) {
		t.Helper()
		db := fmt.Sprintf("conformance%d", n.Add(1))
		open := func() domain.Store {
			t.Helper()
			// Outboxes are abandoned as soon as they are written: the
			// writer's lease is a MongoDB matter, tested on its own.
			s := openStoreWith(t, uri, db, mongo.Options{Lease: time.Millisecond})
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		return open(), open
	}
}

// TestAStoreStartedBeforeMongoDBSaysWhatIsMissingThenBecomesReady starts
// the store with nothing listening at its address, as a replica whose
// MongoDB is still starting: it opens, Ping names the host and what is
// missing, and once MongoDB comes up the store prepares itself.
func TestAStoreStartedBeforeMongoDBSaysWhatIsMissingThenBecomesReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s, err := mongo.Open("mongodb://"+addr+"/", "cupcakes", mongo.Options{})
	if err != nil {
		t.Fatalf("Open before MongoDB is up: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	err = s.Ping(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Ping before MongoDB is up: %v; want an error naming %s", err, addr)
	}
	srv, err := ferret.Run(t.Context(), ferret.Options{Addr: addr, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel = context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := s.WaitPrepared(ctx); err != nil {
		t.Fatalf("not prepared after MongoDB came up: %v", err)
	}
	if _, err := s.CreateCustomer(ctx, domain.Customer{ID: "alice", Name: "Alice", CreditLimit: 100, Available: 100}); err != nil {
		t.Fatalf("CreateCustomer once ready: %v", err)
	}
}

// TestReplicasLookingForAbandonedOutboxesAtOnceClaimEachOnce is what
// keeps N replicas from delivering one another's work: stores on one
// database, as replicas are, ask at the same moment; each abandoned order
// goes to exactly one of them, and nobody gets it again while the lease runs.
func TestReplicasLookingForAbandonedOutboxesAtOnceClaimEachOnce(t *testing.T) {
	uri := ferret.Start(t)
	const replicas, orders = 4, 30
	stores := make([]*mongo.Store, replicas)
	for i := range stores {
		stores[i] = openStoreWith(t, uri, "claims", mongo.Options{Owner: fmt.Sprintf("replica-%d", i)})
		defer stores[i].Close()
	}
	// Their writer's lease ran out (it died).
	writer := openStoreWith(t, uri, "claims", mongo.Options{Owner: "writer", Lease: time.Millisecond})
	defer writer.Close()
	old := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	for i := range orders {
		o := domain.NewOrder(events.OrderCreated{OrderID: fmt.Sprintf("o-%02d", i), CustomerID: "alice",
			Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}}, fmt.Sprintf("test %d", i), "", old)
		o.Outbox = []domain.Message{{ID: fmt.Sprintf("m-%02d", i), Release: 1, At: old}}
		if _, _, err := writer.CreateOrder(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	claimed := make([][]string, replicas)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			ids, err := s.Abandoned(t.Context(), time.Now(), time.Minute, 100)
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
			claimed[i] = ids
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, ids := range claimed {
		for _, id := range ids {
			seen[id]++
		}
	}
	for i := range orders {
		if id := fmt.Sprintf("o-%02d", i); seen[id] != 1 {
			t.Errorf("order %s claimed %d times; want once", id, seen[id])
		}
	}
	if again, err := stores[1].Abandoned(t.Context(), time.Now(), time.Minute, 100); err != nil || len(again) != 0 {
		t.Errorf("while the leases run: %q, %v; want nothing", again, err)
	}
}

// TestAWritersOutboxIsLeftToItUntilTheLeaseEndsOrItComesBack: a replica
// that writes an outbox delivers it; the others leave it for the lease,
// and the same replica restarted (same owner) takes it back at once.
func TestAWritersOutboxIsLeftToItUntilTheLeaseEndsOrItComesBack(t *testing.T) {
	uri := ferret.Start(t)
	opt := func(owner string) mongo.Options { return mongo.Options{Owner: owner, Lease: time.Minute} }
	a := openStoreWith(t, uri, "lease", opt("a"))
	defer a.Close()
	b := openStoreWith(t, uri, "lease", opt("b"))
	defer b.Close()
	at := time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	o := domain.NewOrder(events.OrderCreated{OrderID: "o-1", CustomerID: "alice",
		Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}}, "test 1", "", at)
	o.Outbox = []domain.Message{{ID: "m-1", Release: 1, At: at}}
	if _, _, err := a.CreateOrder(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Abandoned(t.Context(), time.Now(), time.Minute, 10); err != nil || len(got) != 0 {
		t.Errorf("another replica, while a's lease runs: %q, %v; want nothing", got, err)
	}
	again := openStoreWith(t, uri, "lease", opt("a")) // a, restarted
	defer again.Close()
	if got, err := again.Abandoned(t.Context(), time.Now(), time.Minute, 10); err != nil || !slices.Equal(got, []string{"o-1"}) {
		t.Errorf("a restarted: %q, %v; want o-1 back", got, err)
	}
	if got, err := again.Abandoned(t.Context(), time.Now(), time.Minute, 10); err != nil || len(got) != 0 {
		t.Errorf("a restarted, once more: %q, %v; want nothing (its new lease runs)", got, err)
	}
}

// TestRemovingAWholeDeliveredOutboxIsOneCommand pins the cost the relay
// pays when nothing takes an order's last event (its end): one update, not
// a read and a write.
func TestRemovingAWholeDeliveredOutboxIsOneCommand(t *testing.T) {
	uri := ferret.Start(t)
	var mu sync.Mutex
	var cmds []string
	s := openStoreWith(t, uri, "cost", mongo.Options{OnCommand: func(name string) {
		mu.Lock()
		defer mu.Unlock()
		cmds = append(cmds, name)
	}})
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := domain.NewOrder(events.OrderCreated{OrderID: "o-1", CustomerID: "alice",
		Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}}, "test 1", "", now)
	o.Outbox = []domain.Message{{ID: "m-1", Release: 1, At: now}, {ID: "m-2", Settle: 1, At: now}}
	if _, _, err := s.CreateOrder(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	cmds = nil
	mu.Unlock()
	if err := s.Delivered(t.Context(), "o-1", []string{"m-1", "m-2"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(cmds)
	mu.Unlock()
	if !slices.Equal(got, []string{"update"}) {
		t.Errorf("commands %q; want one update", got)
	}
	left, err := s.Order(t.Context(), "o-1")
	if err != nil || len(left.Outbox) != 0 {
		t.Errorf("outbox %d messages, %v; want none", len(left.Outbox), err)
	}
	if ids, err := s.Pending(t.Context(), 0); err != nil || len(ids) != 0 {
		t.Errorf("pending %q, %v; want none", ids, err)
	}
}

// TestStoreConformance runs the store conformance suite, and the relay's
// part of it, against the MongoDB store on FerretDB.
func TestStoreConformance(t *testing.T) {
	open := opener(ferret.Start(t))
	storetest.Run(t, open)
	t.Run("Relay", func(t *testing.T) { relaytest.Run(t, open) })
}

// TestDocumentsAreReadable pins the stored shape: camelCase fields, money
// as integer cents, times as BSON dates, lists as arrays, the outbox inside
// the order with pendingSince while it holds messages.
func TestDocumentsAreReadable(t *testing.T) {
	uri := ferret.Start(t)
	ctx := t.Context()
	s := openStore(t, uri, "cupcakes")
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := s.CreateCustomer(ctx, domain.Customer{ID: "alice", Name: "Alice", CreditLimit: 50_000, Available: 50_000, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangeCredit(ctx, domain.Reserve("alice", "o-1", 1200)); err != nil {
		t.Fatal(err)
	}
	o := domain.NewOrder(events.OrderCreated{OrderID: "o-1", CustomerID: "alice",
		Items: []events.Item{{Flavour: "vanilla", Size: "M", Quantity: 6}}}, "test 1", "", now)
	if _, _, err := s.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateOrder(ctx, "o-1", func(o *domain.Order) error {
		return o.Decide(events.CreditValidated{OrderID: "o-1", CustomerID: "alice", Amount: 1200, Reason: events.ReasonInsufficientCredit},
			"test", "test 2", now)
	}); err != nil {
		t.Fatal(err)
	}
	// A refused order, with its outbox delivered.
	refused := domain.NewOrder(events.OrderCreated{OrderID: "o-2", CustomerID: "alice",
		Items: []events.Item{{Flavour: "lemon", Size: "S", Quantity: 1}}}, "test 3", events.ReasonInsufficientCredit, now)
	if _, _, err := s.CreateOrder(ctx, refused); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateOrder(ctx, "o-2", func(o *domain.Order) error { o.Delivered(o.Outbox[0].ID); return nil }); err != nil {
		t.Fatal(err)
	}

	client, err := driver.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	db := client.Database("cupcakes")
	raw := func(coll, id string) bson.Raw {
		t.Helper()
		r, err := db.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
		if err != nil {
			t.Fatalf("%s %s: %v", coll, id, err)
		}
		return r
	}
	check := func(doc bson.Raw, what string, want map[string]bson.Type) {
		t.Helper()
		elems, _ := doc.Elements()
		if len(elems) != len(want) {
			t.Errorf("%s has fields %v; want exactly %v", what, doc, want)
		}
		for field, typ := range want {
			v, err := doc.LookupErr(field)
			if err != nil {
				t.Errorf("%s has no field %q: %v", what, field, doc)
				continue
			}
			if v.Type != typ {
				t.Errorf("%s.%s is %s; want %s", what, field, v.Type, typ)
			}
		}
	}
	check(raw(mongo.CollCustomers, "alice"), "customer", map[string]bson.Type{
		"_id": bson.TypeString, "name": bson.TypeString, "creditLimit": bson.TypeInt64,
		"availableCredit": bson.TypeInt64, "reservations": bson.TypeArray,
		"createdAt": bson.TypeDateTime, "updatedAt": bson.TypeDateTime, "version": bson.TypeInt64,
	})
	res := raw(mongo.CollCustomers, "alice").Lookup("reservations", "0").Document()
	check(res, "reservation", map[string]bson.Type{"orderId": bson.TypeString, "amount": bson.TypeInt64})

	order := raw(mongo.CollOrders, "o-1")
	check(order, "cancelled order", map[string]bson.Type{
		"_id": bson.TypeString, "customerId": bson.TypeString, "items": bson.TypeArray,
		"amount": bson.TypeInt64, "status": bson.TypeString, "reason": bson.TypeString,
		"reserved": bson.TypeInt64, "createdAt": bson.TypeDateTime, "updatedAt": bson.TypeDateTime,
		"history": bson.TypeArray, "outbox": bson.TypeArray, "pendingSince": bson.TypeDateTime,
		"relayUntil": bson.TypeDateTime, "relayOwner": bson.TypeString, "version": bson.TypeInt64,
	})
	if got := order.Lookup("amount").Int64(); got != 1200 {
		t.Errorf("amount %d cents; want 1200", got)
	}
	if got := order.Lookup("version").Int64(); got != 2 {
		t.Errorf("version %d after one change; want 2", got)
	}
	check(order.Lookup("history", "0").Document(), "step", map[string]bson.Type{
		"status": bson.TypeString, "by": bson.TypeString, "event": bson.TypeString, "at": bson.TypeDateTime,
	})
	check(order.Lookup("outbox", "0").Document(), "message", map[string]bson.Type{
		"id": bson.TypeString, "type": bson.TypeString, "source": bson.TypeString, "eventId": bson.TypeString,
		"data": bson.TypeString, "at": bson.TypeDateTime,
	})
	check(order.Lookup("outbox", "2").Document(), "release", map[string]bson.Type{
		"id": bson.TypeString, "release": bson.TypeInt64, "at": bson.TypeDateTime,
	})
	if first, since := order.Lookup("outbox", "0", "at").Time(), order.Lookup("pendingSince").Time(); !first.Equal(since) {
		t.Errorf("pendingSince %v; want the first message's time %v", since, first)
	}

	check(raw(mongo.CollOrders, "o-2"), "refused order with its outbox delivered", map[string]bson.Type{
		"_id": bson.TypeString, "customerId": bson.TypeString, "items": bson.TypeArray,
		"amount": bson.TypeInt64, "status": bson.TypeString, "reserved": bson.TypeInt64,
		"refused": bson.TypeString, "createdAt": bson.TypeDateTime, "updatedAt": bson.TypeDateTime,
		"history": bson.TypeArray, "outbox": bson.TypeArray, "version": bson.TypeInt64,
	})
}

// openStore opens the store of database db and waits until it is prepared.
func openStore(t *testing.T, uri, db string) *mongo.Store {
	t.Helper()
	return openStoreWith(t, uri, db, mongo.Options{})
}

// openStoreWith is openStore with options.
func openStoreWith(t *testing.T, uri, db string, opt mongo.Options) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(uri, db, opt)
	if err != nil {
		t.Fatalf("open MongoDB store: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.WaitPrepared(ctx); err != nil {
		_ = s.Close()
		t.Fatalf("MongoDB store not prepared: %v", err)
	}
	return s
}

// TestStoresStartingAtOnceAllBecomeReadyWithTheIndexes starts several
// stores on one new database at the same moment, as replicas starting
// together do: each creates what it finds missing, and FerretDB refuses
// to create an index that exists, so all but one fail at first and must
// find the indexes there when they try again.
func TestStoresStartingAtOnceAllBecomeReadyWithTheIndexes(t *testing.T) {
	uri := ferret.Start(t)
	const n = 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := mongo.Open(uri, "cupcakes", mongo.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if errs[i] = s.WaitPrepared(ctx); errs[i] == nil {
				errs[i] = s.Ping(ctx)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
	client, err := driver.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	specs, err := client.Database("cupcakes").Collection(mongo.CollOrders).Indexes().ListSpecifications(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	for _, want := range []string{"_id_", "status_1_createdAt_1", "createdAt_1", "pendingSince_1"} {
		if !names[want] {
			t.Errorf("orders has no index %s (has %v)", want, names)
		}
	}
}
