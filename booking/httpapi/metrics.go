package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yeyak_http_requests_total", Help: "HTTP requests on the public listener by route pattern and status.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "yeyak_http_request_duration_seconds", Help: "HTTP request latency on the public listener by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("httpapi: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// OpsConfig configures the ops listener's handler.
type OpsConfig struct {
	// Gatherer is served at GET /metrics. nil means prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Mounts adds sub-handlers by path prefix, e.g. "/ops/breakers" → the
	// facade's OpsHandler. Each prefix is mounted as itself and as
	// prefix + "/" (its subtree).
	Mounts map[string]http.Handler
}

// NewOpsHandler returns the ops listener's handler: GET /metrics, GET
// /healthz and the mounted sub-handlers. Bind it to loopback (the default
// 127.0.0.1:9090); mutating sub-handlers check the ops token themselves.
func NewOpsHandler(cfg OpsConfig) http.Handler {
	g := cfg.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for prefix, h := range cfg.Mounts {
		mux.Handle(prefix, h)
		mux.Handle(prefix+"/", h)
	}
	return mux
}
