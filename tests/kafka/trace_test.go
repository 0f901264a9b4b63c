package kafka

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cupcake-factory/cupcake-factory/events"
	"github.com/cupcake-factory/cupcake-factory/tests/internal/broker"
)

// span is what the receiver keeps of an exported span.
type span struct {
	TraceID, SpanID, Parent, Name, Service string
	Attrs                                  map[string]string
}

// otlpReceiver is a tiny OTLP/HTTP trace receiver: it decodes each
// ExportTraceServiceRequest posted to /v1/traces and keeps its spans.
type otlpReceiver struct {
	URL   string
	mu    sync.Mutex
	spans []span
}

func startReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var in coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &in); err != nil {
			t.Errorf("OTLP receiver: not an ExportTraceServiceRequest (%s): %v", req.Header.Get("Content-Type"), err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.keep(&in)
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	r.URL = "http://" + ln.Addr().String()
	return r
}

func (r *otlpReceiver) keep(in *coltrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range in.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					Parent: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(), Service: service, Attrs: map[string]string{}}
				for _, kv := range s.GetAttributes() {
					sp.Attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
				}
				r.spans = append(r.spans, sp)
			}
		}
	}
}

// orderTrace returns the traces holding spans of orderID, and the spans of
// those traces.
func (r *otlpReceiver) orderTrace(orderID string) (traces []string, spans []span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.Attrs["cupcake.order_id"] == orderID && !slices.Contains(traces, s.TraceID) {
			traces = append(traces, s.TraceID)
		}
	}
	for _, s := range r.spans {
		if slices.Contains(traces, s.TraceID) {
			spans = append(spans, s)
		}
	}
	return traces, spans
}

func functionsIn(spans []span) []string {
	var fs []string
	for _, s := range spans {
		if f := s.Attrs["cupcake.function"]; f != "" && !slices.Contains(fs, f) {
			fs = append(fs, f)
		}
	}
	slices.Sort(fs)
	return fs
}

// TestOneOrderOverKafkaIsOneTraceAcrossTheSixFunctions runs the binary
// with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a receiver the test runs,
// places one order over REST, and checks the spans exported for it: one
// trace, rooted at the request, every parent exported, the six functions
// in it, and the hops over Kafka (send and process of each topic on the
// way) in it too — the context crossed Kafka in each record and the outbox
// in each message.
func TestOneOrderOverKafkaIsOneTraceAcrossTheSixFunctions(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			rcv := startReceiver(t)
			addr := broker.Start(t, 2)
			p := startApp(t, addr, map[string]string{
				"KAFKA_CONTENT_MODE":          mode,
				"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
				"OTEL_BSP_SCHEDULE_DELAY":     "50",
				"OTEL_SERVICE_NAME":           "cupcake-factory-test",
			})
			r := p.PostJSON(t, "/api/v1/order", `{"orderId":"o-tr1","customerId":"alice","items":[{"flavour":"vanilla","size":"M","quantity":6}]}`)
			if r.Status != http.StatusAccepted {
				t.Fatalf("POST order = %d %s", r.Status, r.Body)
			}
			waitFinal(t, p, []string{"o-tr1"}, 30*time.Second)

			want := events.FunctionNames()
			slices.Sort(want)
			var traces []string
			var spans []span
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				traces, spans = rcv.orderTrace("o-tr1")
				// The last span to end is the processing of the packaged
				// record: its function's span, then the relay's, end first.
				last := slices.ContainsFunc(spans, func(s span) bool { return s.Name == "process "+events.TopicReadyToShip })
				if slices.Equal(functionsIn(spans), want) && last || time.Now().After(deadline) {
					break
				}
			}
			if len(traces) != 1 {
				t.Fatalf("the spans of order o-tr1 are in %d traces %v, want 1", len(traces), traces)
			}
			if got := functionsIn(spans); !slices.Equal(got, want) {
				t.Errorf("function spans %v, want %v", got, want)
			}
			ids := map[string]bool{}
			for _, s := range spans {
				ids[s.SpanID] = true
			}
			var roots []string
			names := map[string]bool{}
			for _, s := range spans {
				names[s.Name] = true
				if s.Service != "cupcake-factory-test" {
					t.Errorf("span %q from service %q, want OTEL_SERVICE_NAME's", s.Name, s.Service)
				}
				switch {
				case s.Parent == "":
					roots = append(roots, s.Name)
				case !ids[s.Parent]:
					t.Errorf("span %q has parent %s, which was not exported in the trace", s.Name, s.Parent)
				}
			}
			// Each hop over Kafka is a record's send and its processing,
			// parent and child; each function runs in the processing of
			// the record that brought its event.
			byID := map[string]span{}
			for _, s := range spans {
				byID[s.SpanID] = s
			}
			for _, s := range spans {
				parent := byID[s.Parent].Name
				if topic, ok := strings.CutPrefix(s.Name, "process "); ok && parent != "send "+topic {
					t.Errorf("span %q has parent %q, want %q", s.Name, parent, "send "+topic)
				}
				if f := s.Attrs["cupcake.function"]; f != "" && !strings.HasPrefix(parent, "process ") {
					t.Errorf("function span %q has parent %q, want the processing of its record", s.Name, parent)
				}
			}
			if !slices.Equal(roots, []string{"POST /api/v1/order"}) {
				t.Errorf("roots %v, want the request that placed the order", roots)
			}
			for _, n := range []string{"send orderrequests", "process orderrequests", "send readytoship", "process readytoship",
				"store CreateOrder", "store UpdateOrder", "relay " + events.TypeShipped} {
				if !names[n] {
					t.Errorf("no %q span in the trace", n)
				}
			}
			if t.Failed() {
				for _, s := range spans {
					t.Logf("%s %s parent %s %v", s.SpanID, s.Name, s.Parent, s.Attrs)
				}
				t.Log(p.Log())
			}
		})
	}
}
