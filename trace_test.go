package function_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/infra/config"
	"github.com/cupcake-factory/cupcake-factory/infra/httpapi"
	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
)

// traceApp runs the whole system in-process (embedded store, auto kitchen)
// behind its HTTP API, with spans going to an in-memory exporter.
func traceApp(t *testing.T) (*httptest.Server, *tracetest.InMemoryExporter) {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "") // the app sets up no exporter of its own
	exp := tracetest.NewInMemoryExporter()
	t.Cleanup(telemetry.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))))
	app := openApp(t, config.KitchenAuto, true)
	srv := httptest.NewServer(httpapi.New(app, app.Store, app.Hub, app.Metrics, app.Log))
	t.Cleanup(srv.Close)
	return srv, exp
}

// orderTrace returns the spans of the trace whose root is the request that
// placed orderID, failing unless every span naming the order is in it.
func orderTrace(t *testing.T, spans tracetest.SpanStubs, orderID string) tracetest.SpanStubs {
	t.Helper()
	traces := map[trace.TraceID]bool{}
	for _, s := range spans {
		if attr(s.Attributes, telemetry.AttrOrder) == orderID {
			traces[s.SpanContext.TraceID()] = true
		}
	}
	if len(traces) != 1 {
		t.Fatalf("the spans of order %s are in %d traces, want 1", orderID, len(traces))
	}
	var out tracetest.SpanStubs
	for _, s := range spans {
		if traces[s.SpanContext.TraceID()] {
			out = append(out, s)
		}
	}
	return out
}

func attr(kvs []attribute.KeyValue, k attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

// checkOneTrace fails unless spans form one tree rooted at a span named
// root, and the function spans in it are the six functions of the pipeline.
func checkOneTrace(t *testing.T, spans tracetest.SpanStubs, root string) {
	t.Helper()
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID()] = true
	}
	var roots []string
	var functions []string
	for _, s := range spans {
		if !s.Parent.IsValid() {
			roots = append(roots, s.Name)
		} else if !ids[s.Parent.SpanID()] {
			t.Errorf("span %q has a parent that is not in the trace", s.Name)
		}
		if f := attr(s.Attributes, telemetry.AttrFunction); f != "" {
			if f != s.Name {
				t.Errorf("function span %q has %s=%s", s.Name, telemetry.AttrFunction, f)
			}
			if !slices.Contains(functions, f) {
				functions = append(functions, f)
			}
		}
	}
	if len(roots) != 1 || roots[0] != root {
		t.Errorf("roots %v, want the one ingress span %q", roots, root)
	}
	slices.Sort(functions)
	want := events.FunctionNames()
	slices.Sort(want)
	if !slices.Equal(functions, want) {
		t.Errorf("function spans %v, want %v", functions, want)
	}
	for _, name := range []string{"store CreateOrder", "store UpdateOrder", "relay " + events.TypeShipped} {
		if !slices.ContainsFunc(spans, func(s tracetest.SpanStub) bool { return s.Name == name }) {
			t.Errorf("no %q span in the trace", name)
		}
	}
}

func TestOneOrderIsOneTraceAcrossTheSixFunctionsInProcess(t *testing.T) {
	tests := []struct {
		name, root string
		place      func(t *testing.T, url string) *http.Response
	}{
		{"REST", "POST /api/v1/order", func(t *testing.T, url string) *http.Response {
			r, err := http.Post(url+"/api/v1/order", "application/json",
				strings.NewReader(`{"orderId":"o-t1","customerId":"alice","items":[{"flavour":"vanilla","size":"M","quantity":6}]}`))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}},
		{"CloudEvent", "POST /{$}", func(t *testing.T, url string) *http.Response {
			req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(`{"orderId":"o-t1","customerId":"alice","items":[{"flavour":"lemon","size":"S","quantity":2}]}`))
			for k, v := range map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "t-1",
				"ce-source": "test", "ce-type": events.TypeOrderCreated, "ce-subject": "o-t1"} {
				req.Header.Set(k, v)
			}
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, exp := traceApp(t)
			r := tt.place(t, srv.URL)
			_ = r.Body.Close()
			if r.StatusCode >= 300 {
				t.Fatalf("placing the order: %s", r.Status)
			}
			// The request's own span may end just after its answer is sent.
			all := exp.GetSpans()
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); all = exp.GetSpans() {
				if slices.ContainsFunc(all, func(s tracetest.SpanStub) bool { return s.Name == tt.root }) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			spans := orderTrace(t, all, "o-t1")
			checkOneTrace(t, spans, tt.root)
			if tt.name == "CloudEvent" && len(spans) > 0 {
				// 00-<trace id>-<span id>-<flags>
				if tp, want := r.Header.Get("Ce-Traceparent"), spans[0].SpanContext.TraceID().String(); !strings.HasPrefix(tp, "00-"+want+"-") {
					t.Errorf("the shipped reply carries traceparent %q, not one of the order's trace %s", tp, want)
				}
			}
			if t.Failed() {
				for _, s := range spans {
					t.Logf("%s %s parent %s", s.SpanContext.SpanID(), s.Name, s.Parent.SpanID())
				}
			}
		})
	}
}
