package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Binding is one function's subscription: its name, the event types it
// takes and their topic.
type Binding struct {
	Function string
	Types    []string
	Topic    string
}

// Publisher is where notifications read from the updates topic go (the
// live hub).
type Publisher interface {
	Publish(ctx context.Context, e cloudevents.Event) error
}

// Options configure the transport.
type Options struct {
	Brokers     []string
	GroupPrefix string // consumer groups are <prefix>-<function>
	InstanceID  string // static group membership as <id>-<function>; "" for dynamic
	ContentMode string
	DeadLetters string // topic
	Updates     string // topic of notifications
	TopicFor    func(eventType string) string
	Retry       Retry
	MaxInFlight int // per partition; 0 is DefaultMaxInFlight
	// Bindings are the functions this process consumes for.
	Bindings []Binding
	// Notify, if set, gets every status-changed notification on Updates.
	Notify Publisher
	// Metrics, if set, counts dead letters.
	Metrics DeadLetterCounter
}

// Transport is events over Kafka: one producer, one consumer group per
// function, and one reader of the updates topic for the process's live
// notifications. It is the transport port's Kafka adapter: Publish, Start,
// Close.
type Transport struct {
	opts     Options
	producer *Producer
	log      *slog.Logger
	mu       sync.Mutex
	joining  []*joining
	// notifications feeds this process's hub; nil if not asked for.
	notifications *notificationsReader
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	lag           lagReader
}

// NewTransport makes the producer, which connects in the background; Start
// starts consuming. Neither waits for the brokers: until they answer,
// Ready says why not, and sends fail with a retriable error.
func NewTransport(opts Options, log *slog.Logger) (*Transport, error) {
	host, _ := os.Hostname()
	p, err := StartProducer(opts.Brokers, opts.GroupPrefix+"-"+host, opts.ContentMode, opts.TopicFor, log)
	if err != nil {
		return nil, err
	}
	return &Transport{opts: opts, producer: p, log: log, lag: lagReader{brokers: opts.Brokers}}, nil
}

// Producer returns the transport's producer.
func (t *Transport) Producer() *Producer { return t.producer }

// Publish produces e to the topic of its type and returns once the broker
// acknowledged it.
func (t *Transport) Publish(ctx context.Context, e cloudevents.Event) error {
	if err := t.producer.Publish(ctx, e); err != nil {
		return domain.Errorf(domain.KindInternal, "%v", err)
	}
	return nil
}

// PublishAll produces events in order, sharing produce requests, and
// returns one error per event (nil: acknowledged).
func (t *Transport) PublishAll(ctx context.Context, es []cloudevents.Event) []error {
	errs := t.producer.PublishAll(ctx, es)
	for i, err := range errs {
		if err != nil {
			errs[i] = domain.Errorf(domain.KindInternal, "%v", err)
		}
	}
	return errs
}

// Start joins a consumer group per binding, each feeding handle, and reads
// the updates topic from now on into Notify. It returns at once: each
// joins in the background, retrying until the brokers let it (a broker
// still starting, a topic just created, a leader being elected never ends
// the process), and Ready reports when all have.
func (t *Transport) Start(_ context.Context, handle func(context.Context, cloudevents.Event) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	for _, b := range t.opts.Bindings {
		cfg := ConsumerConfig{
			Brokers: t.opts.Brokers, Group: t.opts.GroupPrefix + "-" + b.Function, Topic: b.Topic,
			EventTypes: b.Types, DeadLetter: t.opts.DeadLetters, Retry: t.opts.Retry,
			InstanceID: instanceID(t.opts.InstanceID, b.Function), MaxInFlight: t.opts.MaxInFlight, Metrics: t.opts.Metrics,
		}
		j := &joining{group: cfg.Group}
		t.mu.Lock()
		t.joining = append(t.joining, j)
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			var c *Consumer
			err := untilConnected(ctx, t.log, "consumer group "+cfg.Group, connectBackoff, func() error {
				var err error
				c, err = NewConsumer(cfg, handle, t.producer, t.log)
				if err != nil {
					j.lastErr.Store(&err)
				}
				return err
			})
			if err != nil {
				return // closed before it could join
			}
			j.consumer.Store(c)
			c.Run(ctx)
		}()
	}
	if t.opts.Notify != nil {
		t.notifications = startNotifications(t.opts.Brokers, t.opts.GroupPrefix+"-notifications", t.opts.Updates, t.opts.Notify, t.log)
	}
	return nil
}

// joining is a consumer on its way into its group.
type joining struct {
	group    string
	consumer atomic.Pointer[Consumer]
	lastErr  atomic.Pointer[error]
}

func (j *joining) Ready() error {
	if c := j.consumer.Load(); c != nil {
		return c.Ready()
	}
	if err := j.lastErr.Load(); err != nil {
		return fmt.Errorf("consumer group %s: %w", j.group, *err)
	}
	return fmt.Errorf("consumer group %s: %w", j.group, errNotConnected)
}

// Ready reports whether the producer is connected, every consumer is in
// its group and the notifications are being read; if not, what is missing.
func (t *Transport) Ready() error {
	errs := []error{t.producer.Ready()}
	t.mu.Lock()
	for _, j := range t.joining {
		errs = append(errs, j.Ready())
	}
	t.mu.Unlock()
	if t.notifications != nil {
		errs = append(errs, t.notifications.Ready())
	}
	return errors.Join(errs...)
}

// Close stops consuming, lets each consumer finish the event in hand,
// commits, and closes the producer last (a finishing event may still reply).
func (t *Transport) Close(ctx context.Context) error {
	if t.cancel != nil {
		t.cancel()
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stop Kafka consumers: %w", ctx.Err())
	}
	var errs []error
	t.mu.Lock()
	for _, j := range t.joining {
		if c := j.consumer.Load(); c != nil {
			errs = append(errs, c.Close())
		}
	}
	t.mu.Unlock()
	if t.notifications != nil {
		errs = append(errs, t.notifications.close())
	}
	errs = append(errs, t.lag.close(), t.producer.Close())
	return errors.Join(errs...)
}

func instanceID(id, function string) string {
	if id == "" {
		return ""
	}
	return id + "-" + function
}
