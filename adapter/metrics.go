package adapter

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// metrics are the Facade's Prometheus collectors. Names:
//
//	yeyak_registry_breaker_state{breaker}                 0 closed, 1 half-open, 2 open (effective, overrides included)
//	yeyak_registry_breaker_forced{breaker}                0 none, 1 forced open, 2 forced closed
//	yeyak_registry_breaker_transitions_total{breaker,from,to}
//	yeyak_registry_calls_total{operation,outcome}         ok, slow, not_found, rejected, error, timeout, cancelled, breaker_open, bulkhead_full
//	yeyak_registry_call_duration_seconds{operation}       calls that reached the registry
//	yeyak_registry_bulkhead_in_flight{operation}
//	yeyak_registry_bulkhead_rejections_total{operation}
//	yeyak_registry_breaker_store_errors_total{breaker}    shared state (Redis) errors
//	yeyak_registry_breaker_records_dropped_total{breaker} shared-state verdicts dropped under load
type metrics struct {
	reg              prometheus.Registerer
	transitions      *prometheus.CounterVec
	calls            *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	inFlight         *prometheus.GaugeVec
	bulkheadRejected *prometheus.CounterVec
	storeErrors      *prometheus.CounterVec
	recordsDropped   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yeyak_registry_breaker_transitions_total",
			Help: "Registry circuit breaker state transitions.",
		}, []string{"breaker", "from", "to"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yeyak_registry_calls_total",
			Help: "Registry calls through the facade by operation and outcome.",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "yeyak_registry_call_duration_seconds",
			Help:    "Time callers waited for the registry (calls admitted by bulkhead and breaker).",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .4, .8, 1.6, 3.2, 6.4},
		}, []string{"operation"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "yeyak_registry_bulkhead_in_flight",
			Help: "Registry calls in flight per operation (including calls their callers abandoned).",
		}, []string{"operation"}),
		bulkheadRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yeyak_registry_bulkhead_rejections_total",
			Help: "Registry calls refused because the operation's bulkhead was full.",
		}, []string{"operation"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yeyak_registry_breaker_store_errors_total",
			Help: "Errors reading or writing shared breaker state in Redis.",
		}, []string{"breaker"}),
		recordsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yeyak_registry_breaker_records_dropped_total",
			Help: "Call outcomes not applied to shared breaker state because the recorder was behind.",
		}, []string{"breaker"}),
	}
	for _, c := range []prometheus.Collector{m.transitions, m.calls, m.duration, m.inFlight, m.bulkheadRejected, m.storeErrors, m.recordsDropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// registerBreaker adds the state gauges, read at scrape time so a lazily
// reached half-open state shows without a call.
func (m *metrics) registerBreaker(b *breaker) {
	labels := prometheus.Labels{"breaker": b.name}
	state := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "yeyak_registry_breaker_state", Help: "Registry breaker state: 0 closed, 1 half-open, 2 open.",
		ConstLabels: labels,
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, _, _ := b.status(ctx)
		return stateValue(st)
	})
	forced := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "yeyak_registry_breaker_forced", Help: "Registry breaker ops override: 0 none, 1 forced open, 2 forced closed.",
		ConstLabels: labels,
	}, func() float64 { return float64(b.forced.Load()) })
	// Registration can only fail on a duplicate, which newMetrics already
	// caught for the same registerer.
	_ = m.reg.Register(state)
	_ = m.reg.Register(forced)
}

func stateValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}
