package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/cupcake-factory/cupcake-factory/domain"
)

// Binding is one function's subscription: its name, event type and topic.
type Binding struct {
	Function, Type, Topic string
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
}

// Transport is events over Kafka: one producer, one consumer group per
// function, and one reader of the updates topic for the process's live
// notifications. It is the transport port's Kafka adapter: Publish, Start,
// Close.
type Transport struct {
	opts      Options
	producer  *Producer
	log       *slog.Logger
	consumers []*Consumer
	// notifications feeds this process's hub; nil if not asked for.
	notifications *notificationsReader
	cancel        context.CancelFunc
	wg            sync.WaitGroup
}

// NewTransport connects the producer; Start starts consuming.
func NewTransport(opts Options, log *slog.Logger) (*Transport, error) {
	host, _ := os.Hostname()
	p, err := NewProducer(opts.Brokers, opts.GroupPrefix+"-"+host, opts.ContentMode, opts.TopicFor)
	if err != nil {
		return nil, err
	}
	return &Transport{opts: opts, producer: p, log: log}, nil
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
// the updates topic from now on into Notify.
func (t *Transport) Start(_ context.Context, handle func(context.Context, cloudevents.Event) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	for _, b := range t.opts.Bindings {
		c, err := NewConsumer(ConsumerConfig{
			Brokers: t.opts.Brokers, Group: t.opts.GroupPrefix + "-" + b.Function, Topic: b.Topic,
			EventType: b.Type, DeadLetter: t.opts.DeadLetters, Retry: t.opts.Retry,
			InstanceID: instanceID(t.opts.InstanceID, b.Function), MaxInFlight: t.opts.MaxInFlight,
		}, handle, t.producer, t.log)
		if err != nil {
			_ = t.Close(context.Background())
			return err
		}
		t.run(ctx, c)
	}
	if t.opts.Notify != nil {
		r, err := startNotifications(t.opts.Brokers, t.opts.GroupPrefix+"-notifications", t.opts.Updates, t.opts.Notify, t.log)
		if err != nil {
			_ = t.Close(context.Background())
			return err
		}
		t.notifications = r
	}
	return nil
}

func (t *Transport) run(ctx context.Context, c *Consumer) {
	t.consumers = append(t.consumers, c)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		c.Run(ctx)
	}()
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
	for _, c := range t.consumers {
		errs = append(errs, c.Close())
	}
	if t.notifications != nil {
		errs = append(errs, t.notifications.close())
	}
	errs = append(errs, t.producer.Close())
	return errors.Join(errs...)
}

func instanceID(id, function string) string {
	if id == "" {
		return ""
	}
	return id + "-" + function
}
