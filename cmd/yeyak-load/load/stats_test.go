package load

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRecorderPercentilesAndCodes(t *testing.T) {
	r := newRecorder(true)
	for i := 1; i <= 1000; i++ {
		r.call(StepBook, time.Duration(i)*time.Millisecond, "", false)
	}
	r.call(StepBook, 5*time.Millisecond, "registry_unavailable", true)
	r.call(StepBook, 5*time.Millisecond, "sold_out", false)
	r.refusal("sold_out")
	r.outcome("booked")
	r.outcome("booked")
	s := r.summary()
	b := s.Steps[StepBook]
	if b.Calls != 1002 || b.OK != 1000 {
		t.Fatalf("calls %d ok %d", b.Calls, b.OK)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("%s = %.2f ms, want ≈ %.2f", name, got, want)
		}
	}
	near("p50", b.P50Ms, 500)
	near("p90", b.P90Ms, 900)
	near("p99", b.P99Ms, 990)
	near("p99.9", b.P999Ms, 999)
	near("max", b.MaxMs, 1000)
	if b.Codes["registry_unavailable"] != 1 || b.Codes["sold_out"] != 1 {
		t.Errorf("codes %v", b.Codes)
	}
	if s.Errors["book:registry_unavailable"] != 1 || len(s.Errors) != 1 {
		t.Errorf("errors %v: want only the unexpected code", s.Errors)
	}
	// Histograms merge: two runs' p50 is the p50 of all their calls.
	h := s.Histogram(StepBook)
	r2 := newRecorder(false)
	for i := 1001; i <= 3000; i++ {
		r2.call(StepBook, time.Duration(i)*time.Millisecond, "", false)
	}
	h.Merge(r2.summary().Histogram(StepBook))
	near("merged p50", Quantile(h, 50), 1500)
	if s.Histogram("nothing") != nil || Quantile(nil, 50) != 0 {
		t.Error("a step without calls has a histogram")
	}
	if s.Refusals["sold_out"] != 1 || s.Outcomes["booked"] != 2 {
		t.Errorf("refusals %v outcomes %v", s.Refusals, s.Outcomes)
	}
}

func TestRecorderBookings(t *testing.T) {
	r := newRecorder(true)
	r.booking(BookingRecord{ID: "b1", PersonID: "P1", ClinicID: "C1", Date: "2026-01-02", Status: "confirmed", Ack: "created"})
	r.booking(BookingRecord{ID: "b2", PersonID: "P2", ClinicID: "C1", Date: "2026-01-02", Status: "confirmed", Ack: "listed"})
	// A change updates the record, keeps how it was acknowledged, and
	// does not count as another booking.
	r.booking(BookingRecord{ID: "b1", PersonID: "P1", ClinicID: "C1", Date: "2026-01-02", Status: "cancelled", Change: "cancelled"})
	s := r.summary()
	if s.Booked != 2 || len(s.Bookings) != 2 {
		t.Fatalf("booked %d, records %+v", s.Booked, s.Bookings)
	}
	if b := s.Bookings[0]; b.ID != "b1" || b.Status != "cancelled" || b.Change != "cancelled" || b.Ack != "created" {
		t.Errorf("b1 = %+v", b)
	}
	// Without Record only the count is kept.
	r = newRecorder(false)
	r.booking(BookingRecord{ID: "b1"})
	r.booking(BookingRecord{ID: "b1", Change: "cancelled"})
	if s := r.summary(); s.Booked != 1 || len(s.Bookings) != 0 {
		t.Errorf("without Record: booked %d, %d records", s.Booked, len(s.Bookings))
	}
}

func TestSummaryWriteAndPrint(t *testing.T) {
	r := newRecorder(true)
	r.call(StepToken, 2*time.Millisecond, "", false)
	r.call(StepBook, 3*time.Millisecond, "", false)
	r.booking(BookingRecord{ID: "b1", Status: "confirmed", Ack: "created"})
	r.outcome("booked")
	s := r.summary()
	s.Target, s.Shape, s.ElapsedSeconds, s.BookingsPerSecond = "http://127.0.0.1:1", ShapeSpike, 2, 0.5
	path := filepath.Join(t.TempDir(), "s.json")
	if err := s.Write(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The field names are what scripts read.
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"target", "shape", "elapsed_seconds", "booked", "bookings_per_second", "outcomes", "refusals", "errors", "steps", "people", "bookings"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary JSON has no %q: %s", k, raw)
		}
	}
	steps := m["steps"].(map[string]any)
	for _, k := range []string{"calls", "ok", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"} {
		if _, ok := steps["book"].(map[string]any)[k]; !ok {
			t.Errorf("step summary has no %q", k)
		}
	}
	var back Summary
	if err := json.Unmarshal(raw, &back); err != nil || back.Booked != 1 || back.Steps[StepBook].Calls != 1 || back.Bookings[0].ID != "b1" {
		t.Errorf("round trip: %v %+v", err, back)
	}
	var out bytes.Buffer
	s.Print(&out)
	for _, want := range []string{"booked: 1 (0.5 bookings/s)", "book ", "token ", "outcomes: booked=1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestProgressLine(t *testing.T) {
	r := newRecorder(false)
	r.started.Add(3)
	r.inFlight.Add(1)
	r.finished.Add(2)
	r.booking(BookingRecord{ID: "b1"})
	r.call(StepBook, 4*time.Millisecond, "", false)
	line := r.progress(2 * time.Second)
	for _, want := range []string{"people 3", "in flow 1", "done 2", "booked 1 (0.5/s)", "book p99 4.0ms"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress %q lacks %q", line, want)
		}
	}
	// The latency part covers the last second only.
	if line = r.progress(3 * time.Second); strings.Contains(line, "book p99") {
		t.Errorf("second line repeats an old window: %q", line)
	}
}
