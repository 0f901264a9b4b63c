package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
)

// TimeShipping wraps the store the functions write through: a unit of work
// that ships an order (its status was not shipped before the write and is
// after it) observes the order's time from creation to shipping, once the
// write is stored. A redelivered event changes nothing (its write fails as a
// duplicate) and so observes nothing; a write retried on a version conflict
// observes once, with the status it finally started from.
func (m *Metrics) TimeShipping(s domain.Store) domain.Store { return shipTimer{Store: s, m: m} }

type shipTimer struct {
	domain.Store
	m *Metrics
}

func (s shipTimer) UpdateOrder(ctx context.Context, id string, fn func(*domain.Order) error) (domain.Order, error) {
	var before string
	o, err := s.Store.UpdateOrder(ctx, id, func(o *domain.Order) error {
		before = o.Status
		return fn(o)
	})
	if err == nil && before != events.StatusShipped && o.Status == events.StatusShipped {
		s.m.ObserveShipped(o.UpdatedAt.Sub(o.CreatedAt))
	}
	return o, err
}

// OutboxReader is what the outbox gauges read at each scrape.
type OutboxReader interface {
	Pending(ctx context.Context, limit int) ([]string, error)
	Order(ctx context.Context, id string) (domain.Order, error)
}

// OutboxBound is the most pending orders a scrape counts: the relay's own
// round size. A gauge at the bound means "at least that many".
const OutboxBound = 1000

// WatchOutbox exposes the outbox at each scrape: how many orders hold
// undelivered messages (at most OutboxBound are counted) and how long the
// oldest message has waited. A scrape costs one Pending call and one order
// read, bounded by a timeout; if the store fails, the two gauges are left
// out of that scrape and the rest is served.
func (m *Metrics) WatchOutbox(s OutboxReader) {
	m.reg.MustRegister(&outboxCollector{store: s, now: time.Now,
		pending: prometheus.NewDesc(OutboxPending,
			"Orders whose outbox holds messages not yet delivered (counted up to 1000).", nil, nil),
		oldest: prometheus.NewDesc(OutboxOldest,
			"How long the oldest undelivered outbox message has waited; 0 when the outbox is empty.", nil, nil),
	})
}

type outboxCollector struct {
	store           OutboxReader
	now             func() time.Time
	pending, oldest *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pending; ch <- c.oldest }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := withScrapeTimeout()
	defer cancel()
	ids, err := c.store.Pending(ctx, OutboxBound)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(len(ids)))
	age := 0.0
	if len(ids) > 0 {
		o, err := c.store.Order(ctx, ids[0])
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.oldest, err)
			return
		}
		if len(o.Outbox) > 0 {
			age = max(c.now().Sub(o.Outbox[0].At).Seconds(), 0)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
