package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cupcake-factory/cupcake-factory/domain"
	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/metrics"
)

// scrape serves /metrics and parses the answer as Prometheus text.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics = %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

func TestMetricsParseAsPrometheusTextWithTheHistogramsAndStandardCollectors(t *testing.T) {
	m := metrics.New()
	m.ObserveEvent("mixed", events.TypeMixed, "handled", 3*time.Millisecond)
	m.ObserveRequest("GET /api/v1/order/{id}", 200, 2*time.Millisecond)
	m.ObserveShipped(40 * time.Millisecond)
	m.SSERefused()
	m.WatchStreams(func() int { return 7 })
	m.WatchOutbox(outbox{})
	fams := scrape(t, m)
	tests := []struct {
		name string
		typ  dto.MetricType
	}{
		{metrics.EventsTotal, dto.MetricType_COUNTER},
		{metrics.EventDuration, dto.MetricType_HISTOGRAM},
		{metrics.HTTPRequestsTotal, dto.MetricType_COUNTER},
		{metrics.HTTPRequestDuration, dto.MetricType_HISTOGRAM},
		{metrics.OrderEndToEnd, dto.MetricType_HISTOGRAM},
		{metrics.OutboxPending, dto.MetricType_GAUGE},
		{metrics.OutboxOldest, dto.MetricType_GAUGE},
		{metrics.SSEStreams, dto.MetricType_GAUGE},
		{metrics.SSERefusedTotal, dto.MetricType_COUNTER},
		{"go_goroutines", dto.MetricType_GAUGE},
		{"process_cpu_seconds_total", dto.MetricType_COUNTER},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fams[tt.name]
			if f == nil {
				t.Fatalf("/metrics has no %s", tt.name)
			}
			if f.GetType() != tt.typ {
				t.Errorf("%s is a %v, want %v", tt.name, f.GetType(), tt.typ)
			}
		})
	}
	wantLabels := map[string]map[string]string{
		metrics.EventsTotal:         {"type": events.TypeMixed, "outcome": "handled"},
		metrics.EventDuration:       {"function": "mixed", "type": events.TypeMixed, "outcome": "handled"},
		metrics.HTTPRequestsTotal:   {"route": "GET /api/v1/order/{id}", "code": "200"},
		metrics.HTTPRequestDuration: {"route": "GET /api/v1/order/{id}"},
	}
	for name, want := range wantLabels {
		got := map[string]string{}
		for _, l := range fams[name].GetMetric()[0].GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(want) {
			t.Errorf("%s labels %v, want %v", name, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s labels %v, want %v", name, got, want)
			}
		}
	}
	if v := fams[metrics.OutboxPending].GetMetric()[0].GetGauge().GetValue(); v != 2 {
		t.Errorf("outbox pending = %v, want 2", v)
	}
	if v := fams[metrics.OutboxOldest].GetMetric()[0].GetGauge().GetValue(); v < 59 || v > 120 {
		t.Errorf("outbox oldest age = %vs, want about 60", v)
	}
	if v := fams[metrics.SSEStreams].GetMetric()[0].GetGauge().GetValue(); v != 7 {
		t.Errorf("streams = %v, want 7", v)
	}
}

func TestTwoAppsHaveRegistriesOfTheirOwn(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.ObserveEvent("mixed", events.TypeMixed, "handled", time.Millisecond)
	if f := scrape(t, b)[metrics.EventsTotal]; f != nil && len(f.GetMetric()) > 0 {
		t.Errorf("b sees a's events: %v", f)
	}
}

// outbox is a store with two pending orders, the oldest waiting a minute.
type outbox struct{ err error }

func (o outbox) Pending(context.Context, int) ([]string, error) { return []string{"o-1", "o-2"}, o.err }
func (o outbox) Order(_ context.Context, id string) (domain.Order, error) {
	return domain.Order{ID: id, Outbox: []domain.Message{{ID: "m", At: time.Now().Add(-time.Minute)}}}, nil
}

func TestAStoreThatFailsLeavesTheOutboxGaugesOutAndServesTheRest(t *testing.T) {
	m := metrics.New()
	m.WatchOutbox(outbox{err: errors.New("store down")})
	fams := scrape(t, m)
	if fams[metrics.OutboxPending] != nil {
		t.Errorf("outbox gauge served from a failing store")
	}
	if fams["go_goroutines"] == nil {
		t.Errorf("the rest is not served")
	}
}

// orders is a store of one order whose units of work run as a real
// adapter's do: fn on a copy, stored only if it succeeds.
type orders struct {
	domain.Store
	o domain.Order
}

func (s *orders) UpdateOrder(_ context.Context, _ string, fn func(*domain.Order) error) (domain.Order, error) {
	o := s.o
	o.History = append([]domain.Step(nil), s.o.History...)
	if err := fn(&o); err != nil {
		return s.o, err
	}
	s.o = o
	return o, nil
}

func shippedCount(t *testing.T, m *metrics.Metrics) (uint64, float64) {
	t.Helper()
	f := scrape(t, m)[metrics.OrderEndToEnd]
	h := f.GetMetric()[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

func TestAnOrderIsTimedFromCreationToShippingOnceEvenWhenItsEventComesAgain(t *testing.T) {
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	base := domain.Order{ID: "o-1", Status: events.StatusPackaged, CreatedAt: created, UpdatedAt: created}
	ship := func(o *domain.Order) error {
		return o.Apply(domain.To(events.StatusShipped, "auto-packaging", "", "src e-9", created.Add(1500*time.Millisecond)))
	}
	steps := []struct {
		name      string
		fn        func(*domain.Order) error
		wantCount uint64
	}{
		{"the write that ships observes", ship, 1},
		{"the same event again observes nothing", ship, 1},
		{"a refused write observes nothing", func(*domain.Order) error { return errors.New("refused") }, 1},
		{"a write on a shipped order observes nothing", func(*domain.Order) error { return nil }, 1},
	}
	m := metrics.New()
	s := &orders{o: base}
	st := m.TimeShipping(s)
	for _, step := range steps {
		_, _ = st.UpdateOrder(context.Background(), "o-1", step.fn)
		if n, sum := shippedCount(t, m); n != step.wantCount || sum != 1.5 {
			t.Errorf("%s: %d observations summing %vs, want %d summing 1.5s", step.name, n, sum, step.wantCount)
		}
	}
}

func TestConsumerLagIsAGaugePerGroupTopicAndPartition(t *testing.T) {
	m := metrics.New()
	m.WatchLag(func(context.Context) ([]metrics.Lag, error) {
		return []metrics.Lag{{Group: "g-mixed", Topic: "readytobake", Partition: 1, Records: 7}}, nil
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	want := `cupcakes_kafka_consumer_lag{group="g-mixed",partition="1",topic="readytobake"} 7`
	if !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, rec.Body.String())
	}
}
