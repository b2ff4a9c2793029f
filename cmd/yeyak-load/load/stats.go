package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Summary is what a Run saw; Write turns it into the JSON file scripts
// read (yeyak-load --summary FILE).
type Summary struct {
	Target   string    `json:"target"`
	Campaign string    `json:"campaign"`
	Shape    Shape     `json:"shape"`
	Started  time.Time `json:"started"`
	// ElapsedSeconds runs from the first arrival to the last person done.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// Digit is the rotation digit of the day the run used (-1: none).
	Digit int `json:"digit"`
	// People counts people: Started entered the flow, Finished left it,
	// Dropped arrived while MaxInFlight people were in the flow and were
	// not started, Abandoned were still in the flow when the drain ended.
	People PeopleCounts `json:"people"`
	// Booked is the number of bookings the target acknowledged (201, or a
	// booking found by listing after an ambiguous attempt).
	Booked int64 `json:"booked"`
	// BookingsPerSecond is Booked over ElapsedSeconds.
	BookingsPerSecond float64 `json:"bookings_per_second"`
	// Outcomes counts how each person's flow ended: booked, cancelled,
	// rescheduled, checked (StopAfter eligibility), searched, refused:CODE
	// (an expected refusal), sold_out, failed:CODE.
	Outcomes map[string]int64 `json:"outcomes"`
	// Refusals counts expected refusals by code (rule refusals such as
	// not_your_rotation_day, unknown_person, sold_out …).
	Refusals map[string]int64 `json:"refusals"`
	// Errors counts unexpected answers by "step:code" (5xx, transport
	// errors, 4xx the flow should never cause), every attempt included.
	Errors map[string]int64 `json:"errors"`
	// Retries is the number of repeated attempts after retryable answers.
	Retries int64 `json:"retries"`
	// ServerErrors counts answers with a 5xx status, every attempt
	// included (they are also in Errors, by code).
	ServerErrors int64 `json:"server_errors"`
	// Admitted is the number of people the target let into the booking
	// flow (a booking-flow call answered 2xx), through the waiting room or
	// in free flow.
	Admitted int64 `json:"admitted"`
	// Queue is what people saw of the waiting room.
	Queue QueueSummary `json:"queue"`
	// Steps has the latency of every call, by step.
	Steps map[string]StepSummary `json:"steps"`
	// Bookings are the bookings the target acknowledged (Config.Record).
	Bookings []BookingRecord `json:"bookings,omitempty"`

	hists map[string]*hdrhistogram.Histogram
}

// Histogram returns a copy of the latency histogram of step, in
// microseconds (nil if the step made no call), to merge runs: a
// percentile of several runs is a percentile of their merged histograms,
// never an average of percentiles.
func (s *Summary) Histogram(step string) *hdrhistogram.Histogram {
	if h := s.hists[step]; h != nil {
		return h.Clone()
	}
	return nil
}

// Quantile returns the q-th percentile (0..100) of h in milliseconds, 0
// for an empty or nil histogram.
func Quantile(h *hdrhistogram.Histogram, q float64) float64 {
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	return ms(h.ValueAtQuantile(q))
}

// OutcomeInLine is the outcome of a person still in the waiting room
// when the line closed (Config.QueueDrain).
const OutcomeInLine = "in_line"

// QueueSummary is Summary.Queue: the waiting room as the people saw it.
type QueueSummary struct {
	// Joined counts people the queue gave a new place (POST answered 201),
	// Rejoined those it answered with a place they already held (200).
	Joined   int64 `json:"joined"`
	Rejoined int64 `json:"rejoined"`
	// Admitted counts people who left the line with a pass.
	Admitted int64 `json:"admitted"`
	// InLine counts people still in line when it closed (QueueDrain);
	// each holds the place the queue last told them about.
	InLine int64 `json:"in_line"`
	// InLineNoEstimate counts those whose last answer gave no position or
	// no estimated wait (a place the queue could not account for).
	InLineNoEstimate int64 `json:"in_line_no_estimate"`
	// InLineWaitP50S, InLineWaitP99S and InLineWaitMaxS are the estimated
	// waits (seconds) the queue last told the people still in line;
	// InLinePositionMax their furthest position.
	InLineWaitP50S    float64 `json:"in_line_wait_p50_s"`
	InLineWaitP99S    float64 `json:"in_line_wait_p99_s"`
	InLineWaitMaxS    float64 `json:"in_line_wait_max_s"`
	InLinePositionMax int64   `json:"in_line_position_max"`
	// InLineAnswerAgeMaxS is the age of the oldest of those last answers
	// when the line closed (a client polls as Retry-After says).
	InLineAnswerAgeMaxS float64 `json:"in_line_answer_age_max_s"`
}

// PeopleCounts is Summary.People.
type PeopleCounts struct {
	Started   int64 `json:"started"`
	Finished  int64 `json:"finished"`
	Dropped   int64 `json:"dropped"`
	Abandoned int64 `json:"abandoned"`
}

// StepSummary is one step's calls: how many, how many answered 2xx, the
// latency percentiles of all of them (HDR histogram, 3 significant
// digits), and the count of each non-2xx code.
type StepSummary struct {
	Calls  int64            `json:"calls"`
	OK     int64            `json:"ok"`
	P50Ms  float64          `json:"p50_ms"`
	P90Ms  float64          `json:"p90_ms"`
	P99Ms  float64          `json:"p99_ms"`
	P999Ms float64          `json:"p999_ms"`
	MaxMs  float64          `json:"max_ms"`
	Codes  map[string]int64 `json:"codes,omitempty"`
}

// BookingRecord is a booking the target acknowledged, as the load last
// saw it.
type BookingRecord struct {
	ID         string `json:"id"`
	PersonID   string `json:"person_id"`
	CampaignID string `json:"campaign_id"`
	ClinicID   string `json:"clinic_id"`
	Date       string `json:"date"`
	Product    string `json:"product"`
	// Status is the booking's status in the last answer about it
	// (confirmed, provisional, cancelled).
	Status string `json:"status"`
	// Ack is how the booking became known: "created" (201), "replayed"
	// (201 with Idempotent-Replayed) or "listed" (found by GET
	// /v1/bookings after an attempt that ended without a clear answer).
	Ack string `json:"ack"`
	// Change is "cancelled" or "rescheduled" when the target acknowledged
	// that change (200), else "".
	Change string `json:"change,omitempty"`
	// Uncertain is set when the last change attempt ended without an
	// answer and the booking could not be read back: its clinic, date and
	// status may have changed since.
	Uncertain bool `json:"uncertain,omitempty"`
}

// Write writes s as indented JSON to path ("-" is standard output).
func (s *Summary) Write(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// Print writes a human-readable report of s.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "yeyak-load: %s %s campaign %s, digit %d, %.1fs\n", s.Shape, s.Target, s.Campaign, s.Digit, s.ElapsedSeconds)
	fmt.Fprintf(w, "people: %d started, %d finished, %d dropped, %d abandoned\n",
		s.People.Started, s.People.Finished, s.People.Dropped, s.People.Abandoned)
	fmt.Fprintf(w, "booked: %d (%.1f bookings/s), retries %d, admitted to the booking flow %d, 5xx answers %d\n", s.Booked, s.BookingsPerSecond, s.Retries, s.Admitted, s.ServerErrors)
	if q := s.Queue; q.Joined+q.Rejoined > 0 {
		fmt.Fprintf(w, "waiting room: %d joined (%d rejoined), %d admitted with a pass, %d still in line (estimated wait p50 %.0fs p99 %.0fs max %.0fs, furthest position %d)\n",
			q.Joined, q.Rejoined, q.Admitted, q.InLine, q.InLineWaitP50S, q.InLineWaitP99S, q.InLineWaitMaxS, q.InLinePositionMax)
	}
	fmt.Fprintf(w, "%-12s %8s %8s %9s %9s %9s %9s %9s\n", "step", "calls", "ok", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
	for _, name := range slices.Sorted(maps.Keys(s.Steps)) {
		st := s.Steps[name]
		fmt.Fprintf(w, "%-12s %8d %8d %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, st.Calls, st.OK, st.P50Ms, st.P90Ms, st.P99Ms, st.P999Ms, st.MaxMs)
	}
	line := func(title string, m map[string]int64) {
		if len(m) == 0 {
			return
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
		fmt.Fprintf(w, "%s: %s\n", title, strings.Join(parts, " "))
	}
	line("outcomes", s.Outcomes)
	line("expected refusals", s.Refusals)
	line("errors", s.Errors)
}

// recorder collects what the people of a run see. Histograms are not safe
// for concurrent use: one mutex guards them and the maps.
type recorder struct {
	mu       sync.Mutex
	steps    map[string]*stepRec
	outcomes map[string]int64
	refusals map[string]int64
	errors   map[string]int64
	bookings map[string]*BookingRecord
	order    []string
	record   bool
	queue    QueueSummary
	lineWait *hdrhistogram.Histogram // estimated waits of people left in line, seconds
	lineAge  time.Duration

	started, finished, dropped, abandoned, booked, retries, inFlight atomic.Int64
	admitted, lineAdmitted, serverErrors                             atomic.Int64
}

type stepRec struct {
	hist   *hdrhistogram.Histogram // microseconds
	window *hdrhistogram.Histogram // since the last progress line
	calls  int64
	ok     int64
	codes  map[string]int64
}

// maxLatency is the highest latency the histograms track.
const maxLatency = 10 * time.Minute

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(maxLatency/time.Microsecond), 3)
}

func newRecorder(record bool) *recorder {
	return &recorder{steps: map[string]*stepRec{}, outcomes: map[string]int64{}, refusals: map[string]int64{},
		errors: map[string]int64{}, bookings: map[string]*BookingRecord{}, record: record,
		lineWait: hdrhistogram.New(0, int64(30*24*time.Hour/time.Second), 3)}
}

// joined counts a place in line the queue gave (created) or gave back.
func (r *recorder) joined(created bool) {
	r.mu.Lock()
	if created {
		r.queue.Joined++
	} else {
		r.queue.Rejoined++
	}
	r.mu.Unlock()
}

// leftLine records a person still in line when it closed, with the last
// answer the queue gave them and its age.
func (r *recorder) leftLine(last queueStatus, age time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue.InLine++
	if last.Position <= 0 || last.EstimatedWaitSeconds <= 0 {
		r.queue.InLineNoEstimate++
	}
	_ = r.lineWait.RecordValue(min(max(last.EstimatedWaitSeconds, 0), r.lineWait.HighestTrackableValue()))
	r.queue.InLinePositionMax = max(r.queue.InLinePositionMax, last.Position)
	r.lineAge = max(r.lineAge, age)
}

func (r *recorder) step(name string) *stepRec {
	s := r.steps[name]
	if s == nil {
		s = &stepRec{hist: newHist(), window: newHist(), codes: map[string]int64{}}
		r.steps[name] = s
	}
	return s
}

// call records one call of step: its latency, and its code when it did
// not answer 2xx ("" for 2xx). unexpected marks codes that count as errors.
func (r *recorder) call(step string, d time.Duration, code string, unexpected bool) {
	us := max(d.Microseconds(), 1)
	us = min(us, int64(maxLatency/time.Microsecond))
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.step(step)
	_ = s.hist.RecordValue(us)
	_ = s.window.RecordValue(us)
	s.calls++
	if code == "" {
		s.ok++
		return
	}
	s.codes[code]++
	if unexpected {
		r.errors[step+":"+code]++
	}
}

// error counts an unexpected answer of step that is not a call of its own.
func (r *recorder) error(step, code string) {
	r.mu.Lock()
	r.errors[step+":"+code]++
	r.mu.Unlock()
}

// wait records a duration that is not one call (the time in the waiting
// room) under step.
func (r *recorder) wait(step string, d time.Duration) { r.call(step, d, "", false) }

func (r *recorder) outcome(o string) {
	r.mu.Lock()
	r.outcomes[o]++
	r.mu.Unlock()
}

func (r *recorder) refusal(code string) {
	r.mu.Lock()
	r.refusals[code]++
	r.mu.Unlock()
}

// booking records or updates an acknowledged booking. A booking seen for
// the first time counts in Booked.
func (r *recorder) booking(b BookingRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, seen := r.bookings[b.ID]
	if !seen {
		r.booked.Add(1)
		if !r.record {
			r.bookings[b.ID] = nil
			return
		}
		c := b
		r.bookings[b.ID] = &c
		r.order = append(r.order, b.ID)
		return
	}
	if old != nil {
		ack := old.Ack
		*old = b
		if b.Ack == "" {
			old.Ack = ack
		}
	}
}

func ms(us int64) float64 { return float64(us) / 1000 }

func summarize(h *hdrhistogram.Histogram) (p50, p90, p99, p999, maxv float64) {
	if h.TotalCount() == 0 {
		return
	}
	return ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99)),
		ms(h.ValueAtQuantile(99.9)), ms(h.Max())
}

// progress returns the progress line for the last window and starts a new
// window.
func (r *recorder) progress(elapsed time.Duration) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var book string
	if s := r.steps[StepBook]; s != nil && s.window.TotalCount() > 0 {
		_, _, p99, _, _ := summarize(s.window)
		book = fmt.Sprintf(" book p99 %.1fms (%d calls/s)", p99, s.window.TotalCount())
	}
	for _, s := range r.steps {
		s.window.Reset()
	}
	var errs int64
	for _, n := range r.errors {
		errs += n
	}
	var refused int64
	for _, n := range r.refusals {
		refused += n
	}
	b := r.booked.Load()
	return fmt.Sprintf("%5.0fs people %d in flow %d done %d | booked %d (%.1f/s) refused %d errors %d%s",
		elapsed.Seconds(), r.started.Load(), r.inFlight.Load(), r.finished.Load(), b,
		float64(b)/max(elapsed.Seconds(), 1e-9), refused, errs, book)
}

func (r *recorder) summary() *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Summary{
		People:   PeopleCounts{Started: r.started.Load(), Finished: r.finished.Load(), Dropped: r.dropped.Load(), Abandoned: r.abandoned.Load()},
		Booked:   r.booked.Load(),
		Retries:  r.retries.Load(),
		Outcomes: maps.Clone(r.outcomes), Refusals: maps.Clone(r.refusals), Errors: maps.Clone(r.errors),
		Steps: map[string]StepSummary{}, hists: map[string]*hdrhistogram.Histogram{},
		Admitted: r.admitted.Load(), Queue: r.queue, ServerErrors: r.serverErrors.Load(),
	}
	s.Queue.Admitted = r.lineAdmitted.Load()
	if r.queue.InLine > 0 {
		s.Queue.InLineWaitP50S = float64(r.lineWait.ValueAtQuantile(50))
		s.Queue.InLineWaitP99S = float64(r.lineWait.ValueAtQuantile(99))
		s.Queue.InLineWaitMaxS = float64(r.lineWait.Max())
		s.Queue.InLineAnswerAgeMaxS = r.lineAge.Seconds()
	}
	for name, st := range r.steps {
		s.hists[name] = st.hist.Clone()
		ss := StepSummary{Calls: st.calls, OK: st.ok}
		ss.P50Ms, ss.P90Ms, ss.P99Ms, ss.P999Ms, ss.MaxMs = summarize(st.hist)
		if len(st.codes) > 0 {
			ss.Codes = maps.Clone(st.codes)
		}
		s.Steps[name] = ss
	}
	for _, id := range r.order {
		if b := r.bookings[id]; b != nil {
			s.Bookings = append(s.Bookings, *b)
		}
	}
	return s
}
