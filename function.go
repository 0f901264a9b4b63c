// Package function is cupcake-factory as a Knative function: New returns
// the instance kn func's Go scaffold serves with knative.dev/func-go. It is
// also where the system is put together (the composition root): the local
// runner in cmd/cupcake-factory starts the same App and adds the REST API and
// the web UI around it.
package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions/baked"
	"github.com/cupcake-factory/cupcake-factory/functions/creditvalidated"
	"github.com/cupcake-factory/cupcake-factory/functions/decorated"
	"github.com/cupcake-factory/cupcake-factory/functions/dispatch"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
	"github.com/cupcake-factory/cupcake-factory/functions/mixed"
	"github.com/cupcake-factory/cupcake-factory/functions/ordercreated"
	"github.com/cupcake-factory/cupcake-factory/functions/packaged"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
	"github.com/cupcake-factory/cupcake-factory/infra/kafka"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
	"github.com/cupcake-factory/cupcake-factory/infra/mongo"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
)

// Function is the kn func instance.
type Function struct {
	mu  sync.RWMutex
	app *App
}

// New returns an instance; Start readies it.
func New() *Function { return &Function{} }

// Start reads the configuration from the environment (func-go passes the
// same values in cfg) and starts the App.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	app, err := Open(ctx, cfg, newLogger(cfg))
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.app = app
	f.mu.Unlock()
	return nil
}

// Stop closes the App.
func (f *Function) Stop(ctx context.Context) error {
	f.mu.Lock()
	app := f.app
	f.app = nil
	f.mu.Unlock()
	if app == nil {
		return nil
	}
	return app.Close(ctx)
}

// Handle takes a CloudEvent: it is checked, then handled by the function for
// its type (and the replies by theirs, while this process runs them). The
// reply returned is the first one this process does not handle. Errors carry
// the HTTP status func-go should answer with.
func (f *Function) Handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	app := f.App()
	if app == nil {
		return nil, cehttp.NewResult(http.StatusServiceUnavailable, "not started")
	}
	reply, err := app.Ingest(ctx, e)
	if err != nil {
		return nil, cehttp.NewResult(httpapi.EventStatusOf(err), "%s", err.Error())
	}
	return reply, nil
}

// Ready reports whether the store answers.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	app := f.App()
	if app == nil {
		return false, nil
	}
	if err := app.Ready(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Alive reports whether the instance is running.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// App returns the started App, or nil.
func (f *Function) App() *App {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.app
}

func newLogger(cfg config.Config) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
}

// App is the running system: the store, the functions this process runs,
// the router in front of them, the transport events travel by, and the
// notification hub.
type App struct {
	Config config.Config
	Log    *slog.Logger
	Store  domain.Store
	Hub    *notify.Hub
	Router *dispatch.Router
	// Metrics counts events by type and outcome (and, in the runner, HTTP
	// requests); served on /metrics.
	Metrics *metrics.Counters
	// notifier is what functions tell of state changes: the hub directly
	// in-process; over Kafka, the updates topic (and from there every
	// process's hub).
	notifier interface {
		Notify(ctx context.Context, c domain.Change)
	}
	local dispatch.Local
	kafka *kafka.Transport // nil in-process
}

// Open opens the store, connects the transport and starts the configured
// functions.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Store: store, Hub: notify.NewHub(1024, 256), Router: dispatch.NewRouter(), Metrics: metrics.New()}
	a.Metrics.Describe(dispatch.EventsTotal, "CloudEvents handled by the functions, by type and outcome (handled, refused, failed).")
	a.local = dispatch.Local{Router: a.Router}
	a.notifier = a.Hub
	if len(cfg.KafkaBrokers) > 0 {
		if a.kafka, err = kafka.NewTransport(kafkaOptions(cfg), log); err != nil {
			_ = store.Close()
			return nil, err
		}
		a.notifier = kafka.NewNotifier(a.kafka.Producer(), log)
	}
	a.register()
	if cfg.SeedDemo {
		if err := a.seedDemo(ctx); err != nil {
			_ = a.Close(ctx)
			return nil, err
		}
	}
	transport := "in-process"
	switch {
	case a.consumesKafka():
		transport = "kafka"
		if err := a.kafka.Start(a.bindings(), a.Router.Handle, a.Hub.Notify); err != nil {
			_ = store.Close()
			return nil, err
		}
	case a.kafka != nil:
		transport = "http (Kafka for notifications only)"
	}
	log.Info("cupcake-factory started", "functions", cfg.Functions, "kitchen", cfg.KitchenMode,
		"store", storeName(cfg), "transport", transport)
	return a, nil
}

// consumesKafka reports whether events travel over Kafka (rather than
// arriving over HTTP, from curl or from Knative).
func (a *App) consumesKafka() bool { return a.kafka != nil && a.Config.KafkaConsume }

func kafkaOptions(cfg config.Config) kafka.Options {
	return kafka.Options{
		Brokers:     cfg.KafkaBrokers,
		GroupPrefix: cfg.KafkaGroupPrefix,
		ContentMode: cfg.KafkaContentMode,
		DeadLetters: cfg.DeadLetters,
		Updates:     cfg.OrderUpdates,
		TopicFor:    cfg.ForType,
		Retry:       kafka.Retry{Attempts: cfg.KafkaMaxAttempts, Backoff: cfg.KafkaRetryBackoff, MaxBackoff: cfg.KafkaMaxBackoff},
	}
}

// bindings lists the configured functions with their topics.
func (a *App) bindings() []kafka.Binding {
	var out []kafka.Binding
	for _, name := range a.Config.Functions {
		for _, b := range events.Bindings {
			if b.Function == name {
				out = append(out, kafka.Binding{Function: name, Type: b.Type, Topic: a.Config.ForType(b.Type)})
			}
		}
	}
	return out
}

func openStore(ctx context.Context, cfg config.Config) (domain.Store, error) {
	if cfg.MongoURI != "" {
		return mongo.Open(ctx, cfg.MongoURI, cfg.MongoDatabase)
	}
	return bolt.Open(cfg.DataDir)
}

func storeName(cfg config.Config) string {
	if cfg.MongoURI != "" {
		return "mongodb"
	}
	return "embedded (" + cfg.DataDir + ")"
}

// register builds the functions named in FUNCTIONS and routes their types.
func (a *App) register() {
	auto, n := a.Config.Auto(), a.notifier
	handlers := map[string]dispatch.Handler{
		events.FuncOrderCreated:    ordercreated.New(a.Store, n).Handle,
		events.FuncCreditValidated: creditvalidated.New(a.Store, n, auto).Handle,
		events.FuncMixed:           mixed.New(a.Store, n, auto).Handle,
		events.FuncBaked:           baked.New(a.Store, n, auto).Handle,
		events.FuncDecorated:       decorated.New(a.Store, n, auto).Handle,
		events.FuncPackaged:        packaged.New(a.Store, n, auto).Handle,
	}
	for _, name := range a.Config.Functions {
		for _, b := range events.Bindings {
			if b.Function == name {
				a.Router.Register(b.Type, name, handlers[name],
					dispatch.Recover(a.Log), dispatch.Log(a.Log), dispatch.Count(a.Metrics), dispatch.Dedupe(a.Store))
			}
		}
	}
}

// DemoCustomer is created at start-up (SEED_DEMO) so that a first curl works.
var DemoCustomer = domain.NewCustomer{ID: "alice", Name: "Alice Demo", CreditLimit: 50_000}

func (a *App) seedDemo(ctx context.Context) error {
	_, err := a.CreateCustomer(ctx, DemoCustomer)
	if err != nil && domain.KindOf(err) != domain.KindConflict {
		return fmt.Errorf("seed demo customer: %w", err)
	}
	return nil
}

// CreateCustomer checks and stores a new customer.
func (a *App) CreateCustomer(ctx context.Context, in domain.NewCustomer) (domain.Customer, error) {
	if err := in.Validate(); err != nil {
		return domain.Customer{}, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	return a.Store.CreateCustomer(ctx, domain.Customer{
		ID: in.ID, Name: in.Name, CreditLimit: in.CreditLimit, Available: in.CreditLimit,
		CreatedAt: now, UpdatedAt: now,
	})
}

// Ingest takes an event from outside (HTTP): it is checked completely
// before anything is written, given the order id as subject and
// partitionkey if it came without (the record key over Kafka), and
// published. Notification types (shipped, cancelled, failed,
// status-changed) are taken where there is a Kafka to forward them to: on
// Knative a function's reply may reach the API service to be routed by type.
func (a *App) Ingest(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	var orderID string
	if events.IsNotification(e.Type()) {
		if !a.consumesKafka() {
			return nil, domain.Errorf(domain.KindInvalid,
				"event type %q is a notification; only a process publishing to Kafka forwards it", e.Type())
		}
		var u events.OrderUpdate
		if err := events.DecodePayload(e, &u); err != nil {
			return nil, err
		}
		orderID = u.OrderID
	} else {
		_, id, err := events.DecodeData(e)
		if err != nil {
			return nil, err
		}
		orderID = id
	}
	if e.Subject() == "" {
		e.SetSubject(orderID)
	}
	if _, ok := e.Extensions()[events.ExtPartitionKey]; !ok {
		e.SetExtension(events.ExtPartitionKey, orderID)
	}
	return a.Publish(ctx, e)
}

// Publish sends an event on its way: over Kafka, to the topic of its type;
// in-process, to the function for its type and on along the chain of
// replies, returning the first reply no function here takes. An in-process
// chain runs to its end even if the caller goes away: stopping half-way
// would leave the order stranded, with nothing to resume it.
func (a *App) Publish(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	if a.consumesKafka() {
		return a.kafka.Publish(ctx, e)
	}
	return a.local.Dispatch(context.WithoutCancel(ctx), e)
}

// ReportFailure fails an order at a station's report and releases its
// credit. Over Kafka the failed notification goes to the updates topic.
func (a *App) ReportFailure(ctx context.Context, r events.FailureReport, key string) (domain.Order, error) {
	o, failed, err := kitchen.ReportFailure(ctx, a.Store, a.notifier, r, key)
	if err == nil && failed != nil && a.kafka != nil {
		_, err = a.kafka.Publish(ctx, *failed)
	}
	return o, err
}

// Ready checks the store.
func (a *App) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.Store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Close stops the transport (finishing events in hand) and then the store.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.kafka != nil {
		errs = append(errs, a.kafka.Close(ctx))
	}
	errs = append(errs, a.Store.Close())
	return errors.Join(errs...)
}
