package otel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/procxy/procxy"
	procxyotel "github.com/procxy/procxy/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

// Adder is the type the tests run in a child process.
type Adder struct{}

func (Adder) Add(a, b int) int { return a + b }

func (Adder) Fail(msg string) error {
	return &procxy.RemoteError{Code: "E_FAIL", Message: msg}
}

func init() { procxy.Register[Adder](nil) }

func TestMain(m *testing.M) {
	// A child reports its spans on stderr, where the parent's Logger gets
	// them: the child's exporter, as a real program would send them to a
	// collector.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(stderrExporter{}))
	ob, err := procxyotel.New(procxyotel.Options{TracerProvider: tp})
	if err != nil {
		panic(err)
	}
	procxy.Main(procxy.Observe(ob))
	goleak.VerifyTestMain(m)
}

// spanLine is a finished span as a child prints it.
type spanLine struct {
	Name   string `json:"name"`
	Trace  string `json:"trace"`
	Span   string `json:"span"`
	Parent string `json:"parent"`
	Kind   string `json:"kind"`
}

const spanPrefix = "otelspan "

// stderrExporter writes each finished span as one JSON line on stderr.
type stderrExporter struct{}

func (stderrExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, s := range spans {
		b, _ := json.Marshal(spanLine{
			Name: s.Name(), Trace: s.SpanContext().TraceID().String(), Span: s.SpanContext().SpanID().String(),
			Parent: s.Parent().SpanID().String(), Kind: s.SpanKind().String(),
		})
		fmt.Fprintln(os.Stderr, spanPrefix+string(b))
	}
	return nil
}

func (stderrExporter) Shutdown(context.Context) error { return nil }

// childSpans is a slog handler that passes on the spans a child printed.
type childSpans struct{ ch chan spanLine }

func (h childSpans) Enabled(context.Context, slog.Level) bool { return true }
func (h childSpans) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h childSpans) WithGroup(string) slog.Handler            { return h }
func (h childSpans) Handle(_ context.Context, r slog.Record) error {
	if rest, ok := strings.CutPrefix(r.Message, spanPrefix); ok {
		var s spanLine
		if err := json.Unmarshal([]byte(rest), &s); err == nil {
			h.ch <- s
		}
	}
	return nil
}

// TestTraceAcrossProcesses: a call made under a parent span gives a client
// span in the parent and a server span in the child process, all three in
// one trace, each the parent of the next; the metrics count the call and
// the child's spawn and exit.
func TestTraceAcrossProcesses(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	ob, err := procxyotel.New(procxyotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	spans := childSpans{ch: make(chan spanLine, 16)}
	p, err := procxy.New[Adder](t.Context(), procxy.Observe(ob), procxy.Logger(slog.New(spans)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := tp.Tracer("test").Start(t.Context(), "handle request")
	sum, err := procxy.Call[int](ctx, p, "Add", 2, 3)
	if err != nil || sum != 5 {
		t.Fatalf("Add(2, 3) = %d, %v", sum, err)
	}
	if _, err := procxy.Call[struct{}](ctx, p, "Fail", "no"); err == nil {
		t.Fatal("Fail did not fail")
	}
	root.End()

	const service = "github.com/procxy/procxy/otel_test.Adder"
	var client sdktrace.ReadOnlySpan
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == service+"/Add" {
			client = s
		}
	}
	if client == nil {
		t.Fatalf("no client span %s/Add among %d spans", service, len(exp.GetSpans()))
	}
	rootSC := root.SpanContext()
	if client.SpanKind() != trace.SpanKindClient || client.SpanContext().TraceID() != rootSC.TraceID() || client.Parent().SpanID() != rootSC.SpanID() {
		t.Errorf("client span: kind %v, trace %v, parent %v; want a client span in trace %v under %v",
			client.SpanKind(), client.SpanContext().TraceID(), client.Parent().SpanID(), rootSC.TraceID(), rootSC.SpanID())
	}
	var server spanLine
	for server.Name != service+"/Add" {
		server = <-spans.ch
	}
	if server.Kind != "server" || server.Trace != rootSC.TraceID().String() || server.Parent != client.SpanContext().SpanID().String() {
		t.Errorf("the child's span = %+v; want a server span in trace %v whose parent is the client span %v",
			server, rootSC.TraceID(), client.SpanContext().SpanID())
	}
	var failed sdktrace.ReadOnlySpan
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == service+"/Fail" {
			failed = s
		}
	}
	if failed == nil || failed.Status().Code.String() != "Error" || !hasAttr(failed.Attributes(), attribute.String("error.type", "E_FAIL")) {
		t.Errorf("Fail's client span = %+v, want status Error and error.type E_FAIL", failed)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	calls := histogramCount(rm, "rpc.client.call.duration", attribute.String("rpc.method", "Add"))
	if calls != 1 {
		t.Errorf("rpc.client.call.duration has %d Add calls, want 1", calls)
	}
	for _, ev := range []string{"spawn", "exit"} {
		if n := counterSum(rm, "procxy.child.events", attribute.String("procxy.child.event", ev)); n != 1 {
			t.Errorf("procxy.child.events{event=%s} = %d, want 1", ev, n)
		}
	}
}

func hasAttr(attrs []attribute.KeyValue, want attribute.KeyValue) bool {
	for _, a := range attrs {
		if a == want {
			return true
		}
	}
	return false
}

func histogramCount(rm metricdata.ResourceMetrics, name string, attr attribute.KeyValue) uint64 {
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					if v, ok := dp.Attributes.Value(attr.Key); ok && v == attr.Value {
						n += dp.Count
					}
				}
			}
		}
	}
	return n
}

func counterSum(rm metricdata.ResourceMetrics, name string, attr attribute.KeyValue) int64 {
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range s.DataPoints {
					if v, ok := dp.Attributes.Value(attr.Key); ok && v == attr.Value {
						n += dp.Value
					}
				}
			}
		}
	}
	return n
}
