// Package otlp sets up OpenTelemetry tracing from OpenTelemetry's own
// environment variables, and nothing else: the SDK's tracer provider with a
// batching OTLP/HTTP exporter.
//
//   - Nothing is set up (Setup returns nil) unless OTEL_TRACES_EXPORTER is
//     "otlp", or it is unset and OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; OTEL_TRACES_EXPORTER=none
//     and OTEL_SDK_DISABLED=true turn it off.
//   - The exporter reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS,
//     _TIMEOUT, _COMPRESSION, _CERTIFICATE...; only the http/protobuf
//     protocol is built in (OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL).
//   - The batch processor reads OTEL_BSP_*, the sampler OTEL_TRACES_SAMPLER
//     and OTEL_TRACES_SAMPLER_ARG (default: parent-based, always on).
//   - The resource is service.name=cupcake-factory unless OTEL_SERVICE_NAME
//     or OTEL_RESOURCE_ATTRIBUTES say otherwise.
package otlp

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// DefaultServiceName is the service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES name one.
const DefaultServiceName = "cupcake-factory"

// Configured reports whether the environment (getenv) asks for traces to
// be exported, and why not if it does not.
func Configured(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return false, nil
		}
	case "otlp":
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q is not supported here: use otlp or none", exp)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q is not supported here: only http/protobuf (OTLP/HTTP, port 4318)", proto)
	}
	return true, nil
}

// Setup returns the tracer provider the environment configures, or nil if
// it configures none. Shut it down to flush what is buffered.
func Setup(ctx context.Context) (*sdktrace.TracerProvider, error) {
	ok, err := Configured(os.Getenv)
	if err != nil || !ok {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Later detectors win: the environment's names over the default.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME): %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
