package otel

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc"
	otelapi "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/procxy/procxy/otel"

// Options configures an Observer. The zero value uses the global
// providers and propagator.
type Options struct {
	// TracerProvider makes the spans; nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the instruments; nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Propagator carries trace context across process boundaries; nil
	// means otel.GetTextMapPropagator(), or W3C Trace Context and Baggage
	// when that is the default no-op one.
	Propagator propagation.TextMapPropagator
}

// Observer is an observe.Observer that makes spans and records metrics. It
// is safe for concurrent use.
type Observer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	clientDuration, serverDuration metric.Float64Histogram
	clientOut, clientIn            metric.Int64Histogram
	serverIn, serverOut            metric.Int64Histogram
	children                       metric.Int64Counter
}

var _ observe.Observer = (*Observer)(nil)

// New returns an Observer with the instruments made; it fails only if the
// meter provider refuses them.
func New(opts Options) (*Observer, error) {
	tp, mp, prop := opts.TracerProvider, opts.MeterProvider, opts.Propagator
	if tp == nil {
		tp = otelapi.GetTracerProvider()
	}
	if mp == nil {
		mp = otelapi.GetMeterProvider()
	}
	if prop == nil {
		prop = otelapi.GetTextMapPropagator()
		if len(prop.Fields()) == 0 { // the default no-op propagator
			prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
		}
	}
	o := &Observer{tracer: tp.Tracer(ScopeName), prop: prop}
	m := mp.Meter(ScopeName)
	var errs []error
	dur := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 10))
		errs = append(errs, err)
		return h
	}
	size := func(name, desc string) metric.Int64Histogram {
		h, err := m.Int64Histogram(name, metric.WithUnit("By"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(0, 64, 256, 1024, 4096, 16384, 65536, 262144, 1<<20, 4<<20, 16<<20, 64<<20))
		errs = append(errs, err)
		return h
	}
	o.clientDuration = dur("rpc.client.call.duration", "Duration of calls made, from the request to the answer.")
	o.serverDuration = dur("rpc.server.call.duration", "Duration of calls served, from the request to the answer.")
	o.clientOut = size("rpc.client.request.size", "Payload bytes of requests sent.")
	o.clientIn = size("rpc.client.response.size", "Payload bytes of answers received (all chunks of a stream).")
	o.serverIn = size("rpc.server.request.size", "Payload bytes of requests received.")
	o.serverOut = size("rpc.server.response.size", "Payload bytes of answers sent (all chunks of a stream).")
	var err error
	o.children, err = m.Int64Counter("procxy.child.events", metric.WithUnit("{event}"),
		metric.WithDescription("Child processes spawned, exited and restarted, by the attribute procxy.child.event."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("procxy/otel: make instruments: %w", err)
	}
	return o, nil
}

func spanKind(c *observe.Call) trace.SpanKind {
	switch {
	case c.Side == observe.Client && c.Kind == observe.OneWay:
		return trace.SpanKindProducer
	case c.Side == observe.Client:
		return trace.SpanKindClient
	case c.Kind == observe.OneWay:
		return trace.SpanKindConsumer
	}
	return trace.SpanKindServer
}

// spanName follows OpenTelemetry's RPC conventions: service/method.
func spanName(c *observe.Call) string {
	if c.Service == "" {
		return c.Method
	}
	return c.Service + "/" + c.Method
}

func (o *Observer) attrs(c *observe.Call) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("rpc.system", "procxy"),
		attribute.String("rpc.service", c.Service),
		attribute.String("rpc.method", c.Method),
	}
}

// CallStart starts the call's span. A client injects the span's context
// into the call's Carrier; a server's span continues the context it
// extracts from its Carrier.
func (o *Observer) CallStart(ctx context.Context, c *observe.Call) context.Context {
	if c.Side == observe.Server && c.Carrier != nil {
		ctx = o.prop.Extract(ctx, c.Carrier)
	}
	ctx, _ = o.tracer.Start(ctx, spanName(c), trace.WithSpanKind(spanKind(c)),
		trace.WithTimestamp(c.Start), trace.WithAttributes(o.attrs(c)...))
	if c.Side == observe.Client && c.Carrier != nil {
		o.prop.Inject(ctx, c.Carrier)
	}
	return ctx
}

// CallEnd ends the call's span and records its duration and sizes.
func (o *Observer) CallEnd(ctx context.Context, c *observe.Call) {
	attrs := o.attrs(c)
	if c.Err != nil {
		attrs = append(attrs, attribute.String("error.type", errorType(c.Err)))
	}
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.Int64("procxy.bytes_out", c.BytesOut),
			attribute.Int64("procxy.bytes_in", c.BytesIn),
		)
		if c.Err != nil {
			span.RecordError(c.Err)
			span.SetStatus(codes.Error, c.Err.Error())
			span.SetAttributes(attribute.String("error.type", errorType(c.Err)))
		}
	}
	span.End(trace.WithTimestamp(c.Start.Add(c.Duration)))
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	if c.Side == observe.Client {
		o.clientDuration.Record(ctx, c.Duration.Seconds(), set)
		o.clientOut.Record(ctx, c.BytesOut, set)
		if c.Kind != observe.OneWay {
			o.clientIn.Record(ctx, c.BytesIn, set)
		}
		return
	}
	o.serverDuration.Record(ctx, c.Duration.Seconds(), set)
	o.serverIn.Record(ctx, c.BytesIn, set)
	if c.Kind != observe.OneWay {
		o.serverOut.Record(ctx, c.BytesOut, set)
	}
}

// errorType is the error.type attribute: a remote error's code or name,
// else the Go type of the error.
func errorType(err error) string {
	var re *rpc.RemoteError
	if errors.As(err, &re) {
		switch {
		case re.Code != "":
			return re.Code
		case re.Name != "":
			return re.Name
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, rpc.ErrClosed):
		return "closed"
	}
	return reflect.TypeOf(err).String()
}

// Child counts a child process event.
func (o *Observer) Child(e observe.ChildEvent) {
	attrs := []attribute.KeyValue{
		attribute.String("procxy.child.event", e.Kind.String()),
		attribute.String("rpc.service", e.Service),
	}
	if e.Err != nil {
		attrs = append(attrs, attribute.String("error.type", errorType(e.Err)))
	}
	o.children.Add(context.Background(), 1, metric.WithAttributes(attrs...))
}
