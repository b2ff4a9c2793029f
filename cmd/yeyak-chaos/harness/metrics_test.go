package harness

import (
	"math"
	"strings"
	"testing"
)

const exposition = `# HELP yeyak_admission_waiting People ranked in the line and not yet admitted.
# TYPE yeyak_admission_waiting gauge
yeyak_admission_waiting 1234
yeyak_admission_tickets_issued_total 5e+04
yeyak_http_requests_total{code="201",route="POST /v1/bookings"} 90
yeyak_http_requests_total{code="503",route="POST /v1/bookings"} 2
yeyak_http_requests_total{code="500",route="GET /v1/clinics"} 1
yeyak_http_request_duration_seconds_bucket{route="POST /v1/bookings",le="0.1"} 50
yeyak_http_request_duration_seconds_bucket{route="POST /v1/bookings",le="0.5"} 90
yeyak_http_request_duration_seconds_bucket{route="POST /v1/bookings",le="1"} 100
yeyak_http_request_duration_seconds_bucket{route="POST /v1/bookings",le="+Inf"} 100
`

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if m.Value("yeyak_admission_waiting") != 1234 || m.Value("yeyak_admission_tickets_issued_total") != 50000 {
		t.Errorf("gauges: %v", m)
	}
	if got := m.Sum("yeyak_http_requests_total", `route="POST /v1/bookings"`); got != 92 {
		t.Errorf("sum by route %v", got)
	}
	var fives float64
	for _, s := range m["yeyak_http_requests_total"] {
		if strings.HasPrefix(Label(s.Labels, "code"), "5") {
			fives += s.Value
		}
	}
	if fives != 3 {
		t.Errorf("5xx %v", fives)
	}
	// p50: rank 50 is the top of the first bucket; p95: halfway through (0.5, 1].
	if q := m.HistogramQuantile("yeyak_http_request_duration_seconds", 0.5, `route="POST /v1/bookings"`); math.Abs(q-0.1) > 1e-9 {
		t.Errorf("p50 %v", q)
	}
	if q := m.HistogramQuantile("yeyak_http_request_duration_seconds", 0.95, `route="POST /v1/bookings"`); math.Abs(q-0.75) > 1e-9 {
		t.Errorf("p95 %v", q)
	}
	if _, err := ParseMetrics(strings.NewReader("novalue\n")); err == nil {
		t.Error("a line without a value was accepted")
	}
}
