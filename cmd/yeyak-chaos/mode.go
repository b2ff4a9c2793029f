package main

import "time"

// Mode is the size of a chaos run: the full one (make chaos) or the short
// one CI runs.
type Mode struct {
	Name string
	// People and Clinics size the demo world (yeyakd --demo-people,
	// --demo-clinics).
	People, Clinics int
	// Rate is the arrival rate of the main stream, people per second.
	// The registry scenarios run two systems at once (the scenario's and a
	// healthy twin): the rate stays well below what two cores serve, so a
	// latency measures the system, not a queue for the CPU.
	Rate float64
	// Fault is how long a registry fault lasts (with the load on).
	Fault time.Duration
	// Stream is the length of the stream the other faults hit, FaultAt
	// when they hit it.
	Stream, FaultAt time.Duration
	// KafkaDown and PostgresDown are how long the broker and the database
	// stay down.
	KafkaDown, PostgresDown time.Duration
	// Drain is how long people in the flow may finish after arrivals
	// stop; Settle bounds the wait for quiescence.
	Drain, Settle time.Duration
	// MinSamples is the fewest booking calls a p99 is computed from.
	MinSamples int64

	// SurgePeople is the surge scenario's crowd (issue 10); it arrives as a
	// spike with time constant SurgeDecay (98% within 4×SurgeDecay), from
	// SurgeSources client addresses over SurgeConns connections.
	SurgePeople  int
	SurgeDecay   time.Duration
	SurgeSources int
	SurgeConns   int
	// SurgeLine is how long after the last arrival people wait in line;
	// then the line closes (those still in it keep their place) and the
	// admitted people get SurgeFinish to finish booking.
	SurgeLine, SurgeFinish time.Duration
	// JudgeSurgeP99 makes the surge's booking p99 against the twin's a
	// verdict; without it the ratio is a figure only. The short crowd
	// (2,000 people) is one burst of a few seconds whose tail, on a shared
	// 2-core machine, swings with what else runs (0.66× and 4.25× in two
	// runs in a row): a verdict on it would be a coin toss, and CI must not
	// flake. The full run judges it.
	JudgeSurgeP99 bool
}

var (
	fullMode = Mode{Name: "full", People: 1_000_000, Clinics: 300, Rate: 20,
		Fault:  60 * time.Second,
		Stream: 60 * time.Second, FaultAt: 15 * time.Second,
		KafkaDown: 30 * time.Second, PostgresDown: 10 * time.Second,
		Drain: 60 * time.Second, Settle: 3 * time.Minute, MinSamples: 500,
		SurgePeople: 50_000, SurgeDecay: 2 * time.Second, SurgeSources: 500, SurgeConns: 2000,
		SurgeLine: 150 * time.Second, SurgeFinish: 30 * time.Second, JudgeSurgeP99: true}
	shortMode = Mode{Name: "short", People: 20_000, Clinics: 30, Rate: 30,
		Fault:  5 * time.Second,
		Stream: 8 * time.Second, FaultAt: 2 * time.Second,
		KafkaDown: 4 * time.Second, PostgresDown: 2 * time.Second,
		Drain: 20 * time.Second, Settle: 90 * time.Second, MinSamples: 100,
		SurgePeople: 2000, SurgeDecay: 500 * time.Millisecond, SurgeSources: 64, SurgeConns: 256,
		SurgeLine: 15 * time.Second, SurgeFinish: 15 * time.Second}
)

// p99Factor is the most the booking p99 of cached people may grow during
// a registry fault, against the healthy p99 (issue 9, DESIGN invariant 4).
const p99Factor = 1.5
