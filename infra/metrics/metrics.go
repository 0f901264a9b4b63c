// Package metrics is what /metrics shows, on the Prometheus client library:
// the events each function handled and how long that took, the HTTP
// requests by route, the time from an order's creation to its shipping, the
// outbox waiting to be relayed, the live notification streams, and the Go
// runtime and process collectors. Each App owns its registry (never the
// global default one), so tests and several apps in one process stay apart.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names, as dashboards and alerts know them.
const (
	EventsTotal         = "cupcakes_events_total"
	EventDuration       = "cupcakes_event_duration_seconds"
	HTTPRequestsTotal   = "cupcakes_http_requests_total"
	HTTPRequestDuration = "cupcakes_http_request_duration_seconds"
	OrderEndToEnd       = "cupcakes_order_end_to_end_seconds"
	OutboxPending       = "cupcakes_outbox_pending_orders"
	OutboxOldest        = "cupcakes_outbox_oldest_age_seconds"
	SSEStreams          = "cupcakes_sse_streams"
	SSERefusedTotal     = "cupcakes_sse_refused_total"
	DeadLettersTotal    = "cupcakes_deadletters_total"
	MongoCommandsTotal  = "cupcakes_mongodb_commands_total"
)

// Buckets, in seconds. A handler's write is milliseconds; an order's way
// from created to shipped is milliseconds in-process, up to seconds over
// Kafka, and as long as the staff take in the manual kitchen.
var (
	eventBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	httpBuckets  = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	orderBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600}
)

// Metrics holds the app's registry and its collectors.
type Metrics struct {
	reg        *prometheus.Registry
	events     *prometheus.CounterVec
	eventTime  *prometheus.HistogramVec
	requests   *prometheus.CounterVec
	reqTime    *prometheus.HistogramVec
	orderTime  prometheus.Histogram
	sseRefused prometheus.Counter
	dead       *prometheus.CounterVec
	mongo      *prometheus.CounterVec
	commands   sync.Map // command name → prometheus.Counter
}

// New returns the metrics of one app on a registry of its own, with the Go
// runtime and process collectors registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: EventsTotal,
			Help: "CloudEvents handled by the functions, by type and outcome (handled, refused, failed)."},
			[]string{"type", "outcome"}),
		eventTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: EventDuration,
			Help:    "How long a function took to handle a CloudEvent (its unit of work, without relaying what it emitted), by function, type and outcome.",
			Buckets: eventBuckets}, []string{"function", "type", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: HTTPRequestsTotal,
			Help: "HTTP requests by route (the registered pattern) and status code."},
			[]string{"route", "code"}),
		reqTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: HTTPRequestDuration,
			Help:    "HTTP request duration by route (the registered pattern); a notification stream counts for as long as it stayed open.",
			Buckets: httpBuckets}, []string{"route"}),
		orderTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: OrderEndToEnd,
			Help:    "Time from an order's creation to its shipping, observed once per order by the process that ships it.",
			Buckets: orderBuckets}),
		sseRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: SSERefusedTotal,
			Help: "Live notification streams refused because MAX_SSE_CLIENTS were open."}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: DeadLettersTotal,
			Help: "Kafka records sent to the dead-letter topic, by the topic they came from and their event type (empty: not a CloudEvent)."},
			[]string{"topic", "type"}),
		mongo: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MongoCommandsTotal,
			Help: "Commands this process sent to MongoDB, by command name (find, update, insert, findAndModify, ...)."},
			[]string{"command"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.events, m.eventTime, m.requests, m.reqTime, m.orderTime, m.sseRefused, m.dead, m.mongo,
	)
	return m
}

// Registry is where further collectors go (and what tests gather from).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or what the
// scraper negotiates). A collector that fails (the store is down) is left
// out of that scrape; the rest is served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// ObserveEvent counts one handled event and the time its function took.
// outcome is handled, refused or failed.
func (m *Metrics) ObserveEvent(function, typ, outcome string, took time.Duration) {
	m.events.WithLabelValues(typ, outcome).Inc()
	m.eventTime.WithLabelValues(function, typ, outcome).Observe(took.Seconds())
}

// ObserveRequest counts one HTTP request on route (the pattern it was
// registered with, never the raw path) and its duration.
func (m *Metrics) ObserveRequest(route string, code int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.reqTime.WithLabelValues(route).Observe(took.Seconds())
}

// DeadLettered counts a record sent to the dead-letter topic: the topic it
// came from and its event type ("" for a record that is not a CloudEvent).
func (m *Metrics) DeadLettered(topic, typ string) { m.dead.WithLabelValues(topic, typ).Inc() }

// MongoCommand counts one command sent to MongoDB (the driver's command
// monitor calls it for every command, so the counter is looked up once per
// name).
func (m *Metrics) MongoCommand(name string) {
	c, ok := m.commands.Load(name)
	if !ok {
		c, _ = m.commands.LoadOrStore(name, m.mongo.WithLabelValues(name))
	}
	c.(prometheus.Counter).Inc()
}

// SSERefused counts a notification stream refused for being one too many.
func (m *Metrics) SSERefused() { m.sseRefused.Inc() }

// WatchStreams exposes the number of open notification streams, read at
// each scrape.
func (m *Metrics) WatchStreams(open func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: SSEStreams,
		Help: "Live notification streams open now."}, func() float64 { return float64(open()) }))
}

// ObserveShipped records one order's time from creation to shipping.
func (m *Metrics) ObserveShipped(took time.Duration) { m.orderTime.Observe(took.Seconds()) }

// scrapeTimeout bounds what a collector that reads the store may take.
const scrapeTimeout = 2 * time.Second

// withScrapeTimeout is the context a collector reads the store with.
func withScrapeTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), scrapeTimeout)
}
