package kafka

import (
	"context"

	"github.com/IBM/sarama"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cupcake-factory/cupcake-factory/infra/telemetry"
)

// startProduce starts the span of producing e to topic, as a child of the
// trace context e carries (the relay's delivery) or else of ctx's, and
// puts the span's context into e, whose traceparent then travels as the
// record's ce_traceparent header (or inside the structured event).
func startProduce(ctx context.Context, topic string, e *cloudevents.Event) trace.Span {
	if !telemetry.Enabled() {
		return nil
	}
	ctx, span := telemetry.Start(telemetry.Extract(ctx, *e), "send "+topic, trace.SpanKindProducer)
	telemetry.Inject(ctx, e)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("messaging.system", "kafka"), attribute.String("messaging.destination.name", topic),
			attribute.String("messaging.operation.type", "send"),
			telemetry.AttrEventType.String(e.Type()), telemetry.AttrEventID.String(e.ID()), telemetry.AttrOrder.String(e.Subject()))
	}
	return span
}

// startConsume starts the span of processing a record, as a child of the
// trace context its event carries (the producer's span).
func startConsume(ctx context.Context, msg *sarama.ConsumerMessage, e cloudevents.Event) (context.Context, trace.Span) {
	if !telemetry.Enabled() {
		return ctx, nil
	}
	ctx, span := telemetry.Start(telemetry.Extract(ctx, e), "process "+msg.Topic, trace.SpanKindConsumer)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("messaging.system", "kafka"), attribute.String("messaging.destination.name", msg.Topic),
			attribute.String("messaging.operation.type", "process"), attribute.Int("messaging.destination.partition.id", int(msg.Partition)),
			attribute.Int64("messaging.kafka.offset", msg.Offset),
			telemetry.AttrEventType.String(e.Type()), telemetry.AttrEventID.String(e.ID()), telemetry.AttrOrder.String(e.Subject()))
	}
	return ctx, span
}

// endSpan ends a span startProduce or startConsume started (nil: none).
func endSpan(span trace.Span, err error) {
	if span != nil {
		telemetry.End(span, err)
	}
}
