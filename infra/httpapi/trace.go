package httpapi

import (
	"net/http"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
)

var noSpan trace.Span = noop.Span{}

// untraced are the routes polled by machines (probes, scrapes): a trace of
// each would bury the orders' in Jaeger.
var untraced = []string{"GET /metrics", "GET /health/liveness", "GET /health/readiness"}

func traced(pattern string) bool { return !slices.Contains(untraced, pattern) }

// startSpan starts the server span of a request, named by its route
// pattern (never the raw path): the root of the trace, or a child of the
// caller's if the request has a traceparent header.
func startSpan(r *http.Request, pattern string) (*http.Request, trace.Span) {
	ctx := telemetry.HTTP(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := telemetry.Start(ctx, pattern, trace.SpanKindServer)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", pattern),
			attribute.String("url.path", r.URL.Path))
	}
	return r.WithContext(ctx), span
}

// endSpan ends a request's span with its status (5xx is an error).
func endSpan(span trace.Span, status int) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}
