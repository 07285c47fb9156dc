package otel_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/procxy/procxy"
	procxyotel "github.com/procxy/procxy/otel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Metrics of a procxy parent scraped by Prometheus: the OpenTelemetry
// Prometheus exporter feeds a registry that /metrics serves. (A program
// would serve it with http.ListenAndServe; the example asks it once.)
func Example_prometheus() {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		log.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	ob, err := procxyotel.New(procxyotel.Options{MeterProvider: mp})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	p, err := procxy.New[Adder](ctx, procxy.Observe(ob), procxy.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	sum, err := procxy.Call[int](ctx, p, "Add", 2, 3)
	if err != nil {
		log.Fatal(err)
	}
	p.Close()
	fmt.Println("2 + 3 =", sum)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "rpc_client_call_duration_seconds_count") || strings.HasPrefix(line, "procxy_child_events_total") {
			fmt.Print(line)
		}
	}
	// Output:
	// 2 + 3 = 5
	// procxy_child_events_total{procxy_child_event="exit",rpc_service="github.com/procxy/procxy/otel_test.Adder"} 1
	// procxy_child_events_total{procxy_child_event="spawn",rpc_service="github.com/procxy/procxy/otel_test.Adder"} 1
	// rpc_client_call_duration_seconds_count{rpc_method="$new",rpc_service="github.com/procxy/procxy/otel_test.Adder",rpc_system="procxy"} 1
	// rpc_client_call_duration_seconds_count{rpc_method="Add",rpc_service="github.com/procxy/procxy/otel_test.Adder",rpc_system="procxy"} 1
}
