package guard

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are guard's Prometheus series. Labels carry reasons only: never
// a person id or an address.
type metrics struct {
	refused *prometheus.CounterVec
}

// newRefusedCounter is yeyak_guard_refused_total, shared by Guard and
// Sessions on one registry.
func newRefusedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "yeyak_guard_refused_total",
		Help: "Requests refused by the abuse guard, by reason (addr_rate, addr_in_flight, person_rate, session_active).",
	}, []string{"reason"})
}

// registerCounterVec registers c, or returns the identical collector
// already registered (Guard and Sessions share one).
func registerCounterVec(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("guard: register metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, fmt.Errorf("guard: register metrics: %w", err)
		}
		return existing, nil
	}
	return c, nil
}

func newMetrics(reg prometheus.Registerer, g *Guard) (*metrics, error) {
	refused, err := registerCounterVec(reg, newRefusedCounter())
	if err != nil {
		return nil, err
	}
	m := &metrics{refused: refused}
	for _, r := range []string{reasonAddrRate, reasonAddrInFlight, reasonPersonRate} {
		m.refused.WithLabelValues(r)
	}
	var cs []prometheus.Collector
	if g.person != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "yeyak_guard_person_limiters", Help: "Per-person rate limiters held (bounded by MaxKeys).",
		}, func() float64 { return float64(g.person.len()) }))
	}
	if g.addr != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "yeyak_guard_addr_limiters", Help: "Per-address rate limiters held (bounded by MaxKeys).",
		}, func() float64 { return float64(g.addr.len()) }))
	}
	if g.inflight != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "yeyak_guard_addrs_in_flight", Help: "Client addresses with requests in progress.",
		}, func() float64 { return float64(g.inflight.len()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("guard: register metrics: %w", err)
			}
			// An earlier Guard on this registry keeps reporting its gauges.
		}
	}
	return m, nil
}
