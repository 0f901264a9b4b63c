package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/functions"
	"github.com/cupcake-factory/cupcake-factory/functions/dispatch"
	"github.com/cupcake-factory/cupcake-factory/functions/kitchen"
	"github.com/cupcake-factory/cupcake-factory/functions/ordercreated"
	"github.com/cupcake-factory/cupcake-factory/functions/relay"
	"github.com/cupcake-factory/cupcake-factory/infra/bolt"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
	"github.com/cupcake-factory/cupcake-factory/infra/kafka"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
	"github.com/cupcake-factory/cupcake-factory/infra/mongo"
	"github.com/cupcake-factory/cupcake-factory/infra/notify"
	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
	"github.com/cupcake-factory/cupcake-factory/infra/telemetry/otlp"
)

// Transport carries events between functions over Kafka (infra/kafka: a
// topic per event type). In one process there is none: the dispatcher
// hands each event to the next function directly.
type Transport interface {
	Publish(ctx context.Context, e cloudevents.Event) error
	PublishAll(ctx context.Context, es []cloudevents.Event) []error
	Start(ctx context.Context, handle func(context.Context, cloudevents.Event) error) error
	Ready() error
	Close(ctx context.Context) error
}

// App is the running system, put together from the configuration: the
// store, the functions this process runs behind a router, the transport,
// the relay of the outboxes, and the live notification hub.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Store   domain.Store
	Hub     *notify.Hub
	Router  *dispatch.Router
	Metrics *metrics.Metrics

	transport  Transport // nil in one process
	consume    bool      // the transport's consumers feed the functions (else Knative calls them over HTTP)
	dispatcher *dispatch.Dispatcher
	relay      *relay.Relay
	stopRelay  context.CancelFunc
	relayDone  chan struct{}
	// tracing is the tracer provider the OTEL_* variables configured (nil
	// if none), untraced puts back the one before.
	tracing  *sdktrace.TracerProvider
	untraced func()
}

// NewLogger returns the JSON logger at the configured level.
func NewLogger(cfg config.Config) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
}

// Open opens the store, connects the transport, starts the configured
// functions and the relay.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	tp, err := otlp.Setup(ctx)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	store, err := openStore(cfg, m)
	if err != nil {
		if tp != nil {
			_ = tp.Shutdown(ctx)
		}
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Store: store, Hub: notify.NewHub(8192), Router: dispatch.NewRouter(), Metrics: m}
	if tp != nil {
		a.tracing = tp
		a.untraced = telemetry.Use(tp)
		log.Info("tracing: exporting spans over OTLP/HTTP (OTEL_* environment)")
	}
	a.Metrics.WatchStreams(a.Hub.Streams)
	a.Metrics.WatchOutbox(store)
	if err := a.connect(); err != nil {
		_ = store.Close()
		return nil, err
	}
	var pub relay.Publisher = a.Hub
	if a.transport != nil {
		pub = a.transport
	}
	a.relay = relay.New(store, pub, log)
	// Over Kafka every event goes to its topic; in one process, and on
	// Knative's reply path, the relay hands on the next step's event.
	a.relay.HandOn = !a.consume
	if a.relay.HandOn {
		a.relay.Takes = a.Router.Handles
	}
	a.dispatcher = &dispatch.Dispatcher{Router: a.Router, Relay: a.relay, Log: log}
	if err := a.register(); err != nil {
		_ = a.Close(ctx)
		return nil, err
	}
	if cfg.SeedDemo {
		if err := a.waitForStore(ctx); err != nil {
			_ = a.Close(ctx)
			return nil, err
		}
		if err := a.seedDemo(ctx); err != nil {
			_ = a.Close(ctx)
			return nil, err
		}
	}
	if a.transport != nil {
		handle := func(ctx context.Context, e cloudevents.Event) error {
			_, err := a.dispatcher.Handle(ctx, e)
			return err
		}
		if err := a.transport.Start(ctx, handle); err != nil {
			_ = a.Close(ctx)
			return nil, err
		}
	}
	relayCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopRelay, a.relayDone = cancel, make(chan struct{})
	go func() {
		defer close(a.relayDone)
		a.relay.Run(relayCtx, func(ctx context.Context, o domain.Order) { a.dispatcher.Resume(ctx, o) })
	}()
	log.Info("cupcake-factory started", "functions", cfg.Functions, "kitchen", cfg.KitchenMode, "store", storeName(cfg))
	return a, nil
}

// connect chooses the transport: without KAFKA_BROKERS everything is
// in-process; with them, events travel over Kafka, unless KAFKA_CONSUME is
// false (Knative delivers the events over HTTP and routes the replies), and
// then Kafka carries only the notifications.
func (a *App) connect() error {
	cfg := a.Config
	if len(cfg.KafkaBrokers) == 0 {
		return nil
	}
	opts := kafka.Options{
		Brokers: cfg.KafkaBrokers, GroupPrefix: cfg.KafkaGroupPrefix, InstanceID: cfg.KafkaInstanceID, ContentMode: cfg.KafkaContentMode,
		DeadLetters: cfg.DeadLetters(), Updates: cfg.OrderUpdates(), TopicFor: cfg.ForType,
		Retry:       kafka.Retry{Attempts: cfg.KafkaMaxAttempts, Backoff: cfg.KafkaRetryBackoff, MaxBackoff: cfg.KafkaMaxBackoff},
		MaxInFlight: cfg.KafkaMaxInFlight,
		Metrics:     a.Metrics,
	}
	if cfg.KafkaConsume {
		opts.Notify = a.Hub
		for _, name := range cfg.Functions {
			s, _ := events.StepNamed(name)
			opts.Bindings = append(opts.Bindings, kafka.Binding{Function: name, Types: s.Types(), Topic: cfg.ForType(s.Takes)})
		}
	}
	k, err := kafka.NewTransport(opts, a.Log)
	if err != nil {
		return err
	}
	a.transport, a.consume = k, cfg.KafkaConsume
	if cfg.KafkaConsume {
		a.Metrics.WatchLag(func(ctx context.Context) ([]metrics.Lag, error) {
			lags, err := k.Lag(ctx)
			out := make([]metrics.Lag, len(lags))
			for i, l := range lags {
				out[i] = metrics.Lag(l)
			}
			return out, err
		})
	}
	return nil
}

func openStore(cfg config.Config, m *metrics.Metrics) (domain.Store, error) {
	if cfg.MongoURI != "" {
		return mongo.Open(cfg.MongoURI, cfg.MongoDatabase, mongo.Options{
			OnCommand: m.MongoCommand, Lease: relay.Lease, Owner: cfg.KafkaInstanceID})
	}
	return bolt.Open(cfg.DataDir)
}

func storeName(cfg config.Config) string {
	if cfg.MongoURI != "" {
		return "mongodb"
	}
	return "embedded (" + cfg.DataDir + ")"
}

// register routes the types of the functions named in FUNCTIONS.
func (a *App) register() error {
	for _, name := range a.Config.Functions {
		step, _ := events.StepNamed(name)
		h, err := functions.New(step, telemetry.Store(a.Metrics.TimeShipping(a.Store)), a.Config.Auto())
		if err != nil {
			return err
		}
		for _, t := range step.Types() {
			a.Router.Register(t, name, h, dispatch.Trace(name), dispatch.Recover(a.Log), dispatch.Log(a.Log),
				dispatch.Count(a.Metrics, name))
		}
	}
	return nil
}

// waitForStore waits until a store that prepares itself in the background
// (MongoDB: reached, indexes created) is ready, saying what it waits for.
func (a *App) waitForStore(ctx context.Context) error {
	p, ok := a.Store.(interface{ WaitPrepared(context.Context) error })
	if !ok {
		return nil
	}
	for {
		wait, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := p.WaitPrepared(wait)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		a.Log.Warn("waiting for the store", "missing", err.Error())
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
	return a.Store.CreateCustomer(ctx, in.Customer(time.Now()))
}

// SetCreditLimit changes a customer's credit limit.
func (a *App) SetCreditLimit(ctx context.Context, id string, limit int64) (domain.Customer, error) {
	return a.Store.UpdateCustomer(ctx, id, func(c *domain.Customer) error {
		c.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
		return c.SetCreditLimit(limit)
	})
}

// Ingest takes an event from outside (HTTP): it is checked completely
// before anything is written, given the order id as subject and
// partitionkey if it came without (the record key over Kafka), and sent on.
// The reply is the first event the functions here emitted that none of them
// takes (nil over Kafka: there the replies travel on). Notification types
// are taken only by a process consuming Kafka, which forwards them to the
// updates topic: on Knative a function's reply may reach the API service to
// be routed by type. The chain runs to its end even if the caller goes away.
func (a *App) Ingest(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	var orderID string
	if events.IsNotification(e.Type()) {
		if len(a.Config.KafkaBrokers) == 0 || !a.Config.KafkaConsume {
			return nil, domain.Errorf(domain.KindInvalid,
				"event type %q is a notification; only a process publishing to Kafka forwards it", e.Type())
		}
		var u events.OrderUpdate
		if err := events.DecodePayload(e, &u); err != nil {
			return nil, err
		}
		orderID = u.OrderID
	} else {
		d, id, err := events.DecodeData(e)
		if err != nil {
			return nil, err
		}
		if o, ok := d.(*events.OrderCreated); ok {
			// Refused here, as on REST, rather than recorded as an
			// invalid order: the caller is told at once.
			if err := domain.ValidateItems(o.Items); err != nil {
				return nil, err
			}
		}
		orderID = id
	}
	if e.Subject() == "" {
		e.SetSubject(orderID)
	}
	if _, ok := e.Extensions()[events.ExtPartitionKey]; !ok {
		e.SetExtension(events.ExtPartitionKey, orderID)
	}
	// The request's span (the trace's root, or the caller's) goes on with
	// the event, unless it came with a trace context of its own.
	telemetry.InjectIfAbsent(ctx, &e)
	if a.consume {
		return nil, a.transport.Publish(ctx, e)
	}
	return a.dispatcher.Handle(context.WithoutCancel(ctx), e)
}

// ReportFailure fails an order at a station's report; the release of its
// credit and the failed event are delivered from its outbox at once.
func (a *App) ReportFailure(ctx context.Context, r events.FailureReport, key string) (domain.Order, error) {
	o, err := kitchen.ReportFailure(ctx, a.Store, r, key)
	if err != nil {
		return o, err
	}
	a.dispatcher.Resume(context.WithoutCancel(ctx), o)
	return o, nil
}

// Cancel cancels an order at its customer's request (key identifies the
// request); the release of its credit and the cancelled event are
// delivered from its outbox at once.
func (a *App) Cancel(ctx context.Context, r events.CancelRequest, key string) (domain.Order, error) {
	o, err := ordercreated.Cancel(ctx, a.Store, r, key, time.Now())
	if errors.Is(err, domain.ErrDuplicate) {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	a.dispatcher.Resume(context.WithoutCancel(ctx), o)
	return o, nil
}

// Ready checks the store and, over Kafka, that the producer is connected,
// every consumer is in its group and the notifications are being read
// (until then the transport keeps retrying, and the process is not ready).
func (a *App) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.Store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if a.transport != nil {
		if err := a.transport.Ready(); err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
	}
	return nil
}

// Close stops the relay and the transport (finishing events in hand), then
// the store, and last flushes the spans still buffered.
func (a *App) Close(ctx context.Context) error {
	if a.stopRelay != nil {
		a.stopRelay()
		<-a.relayDone
	}
	var errs []error
	if a.transport != nil {
		errs = append(errs, a.transport.Close(ctx))
	}
	errs = append(errs, a.Store.Close())
	if a.tracing != nil {
		a.untraced()
		if err := a.tracing.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush traces: %w", err))
		}
	}
	return errors.Join(errs...)
}
