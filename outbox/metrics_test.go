package outbox_test

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testutilCounter(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }

func testutilGauge(g prometheus.Gauge) float64 { return testutil.ToFloat64(g) }
