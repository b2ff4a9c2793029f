package admission

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus series (yeyak_admission_*).
type metrics struct {
	waiting        prometheus.Gauge
	pending        prometheus.Gauge
	rate           prometheus.Gauge
	estimatedWait  prometheus.Gauge
	admitted       prometheus.Counter
	tickets        prometheus.Counter
	passesIssued   prometheus.Counter
	passesRejected *prometheus.CounterVec
	doorWaits      prometheus.Counter
	refused        prometheus.Counter
	verdicts       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "yeyak", "admission"
	m := &metrics{
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "waiting",
			Help: "People ranked in the line and not yet admitted."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "pending",
			Help: "People who joined in a pre-opening window, waiting for the draw at the opening."}),
		rate: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "rate",
			Help: "Current admission rate (people per second) set by the control law."}),
		estimatedWait: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "estimated_wait_seconds",
			Help: "Estimated wait of the last person in line: waiting / rate."}),
		admitted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "admitted_total",
			Help: "People admitted from the line (rate() gives admitted per second)."}),
		tickets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "tickets_issued_total",
			Help: "New places in line (duplicate joins are not counted)."}),
		passesIssued: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "passes_issued_total",
			Help: "Passes signed for admitted people and free-flow requests."}),
		passesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "passes_rejected_total",
			Help: "Guarded requests refused during a surge, by reason (missing, malformed, unknown_key, bad_signature, expired)."},
			[]string{"reason"}),
		doorWaits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "door_waits_total",
			Help: "Polls of admitted people told to come back in a moment: passes are handed out at the admission rate (the door), not all at once."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "queue_required_total",
			Help: "Guarded requests answered 429 queue_required."}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "law_verdicts_total",
			Help: "Control-law evaluations by verdict (increase, decrease, hold)."}, []string{"verdict"}),
	}
	for _, c := range []prometheus.Collector{m.waiting, m.pending, m.rate, m.estimatedWait, m.admitted, m.tickets,
		m.passesIssued, m.passesRejected, m.doorWaits, m.refused, m.verdicts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("admission: register metrics: %w", err)
		}
	}
	for _, r := range []string{"missing", "malformed", "unknown_key", "bad_signature", "expired"} {
		m.passesRejected.WithLabelValues(r)
	}
	return m, nil
}
