package adapter_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yeyak/yeyak/adapter"
)

// metricValue gathers f's metrics and returns the value of the series with
// the given name and label pairs (0 if absent).
func metricValue(t *testing.T, f *adapter.Facade, name string, labelPairs ...string) float64 {
	t.Helper()
	mfs, err := f.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labelPairs); i += 2 {
		want[labelPairs[i]] = labelPairs[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func TestFacadeMetricsExposed(t *testing.T) {
	reg := prometheus.NewRegistry()
	fake := &fakeRegistry{}
	f := newFacade(t, fake, adapter.FacadeConfig{Registerer: reg, MinRequests: 1})
	ctx := context.Background()
	if _, err := f.Eligibility(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	fake.set(errBoom, 0)
	_, _ = f.Eligibility(ctx, "p")
	_, _ = f.Eligibility(ctx, "p") // rejected by the open breaker

	want := `
# HELP yeyak_registry_breaker_state Registry breaker state: 0 closed, 1 half-open, 2 open.
# TYPE yeyak_registry_breaker_state gauge
yeyak_registry_breaker_state{breaker="read"} 2
yeyak_registry_breaker_state{breaker="write"} 0
# HELP yeyak_registry_breaker_transitions_total Registry circuit breaker state transitions.
# TYPE yeyak_registry_breaker_transitions_total counter
yeyak_registry_breaker_transitions_total{breaker="read",from="closed",to="open"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"yeyak_registry_breaker_state", "yeyak_registry_breaker_transitions_total"); err != nil {
		t.Fatal(err)
	}
	for outcome, want := range map[string]float64{"ok": 1, "error": 1, "breaker_open": 1, "timeout": 0} {
		if got := metricValue(t, f, "yeyak_registry_calls_total", "operation", "eligibility", "outcome", outcome); got != want {
			t.Errorf("calls_total{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if n := metricValue2(t, reg, "yeyak_registry_call_duration_seconds"); n != 2 {
		t.Fatalf("latency histogram has %v samples, want 2 (calls that reached the registry)", n)
	}
	for _, name := range []string{"yeyak_registry_bulkhead_in_flight", "yeyak_registry_breaker_forced"} {
		if c, err := testutil.GatherAndCount(reg, name); err != nil || c == 0 {
			t.Fatalf("%s not exposed (%d, %v)", name, c, err)
		}
	}
	if f.Gatherer() != prometheus.Gatherer(reg) {
		t.Fatal("Gatherer should be the configured registry")
	}
}

func metricValue2(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return n
}
