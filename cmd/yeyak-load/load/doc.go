// Package load is yeyak's launch-day load generator, the library behind
// cmd/yeyak-load (and the chaos harness, which drives it).
//
// It simulates people, not requests. Each virtual person is someone of the
// synthetic population (mocks/population, the same Seed and size as the
// target's yeyakd --demo) who
//
//  1. gets a token from the demo identity provider (POST /demo/token),
//  2. checks eligibility (GET /v1/me/eligibility),
//  3. searches clinics with doses left on a vaccination date
//     (GET /v1/clinics?date=…&product=…),
//  4. books (POST /v1/bookings with an Idempotency-Key kept across
//     retries; sold out → search again, another place, a new key),
//  5. sometimes cancels (DELETE) or reschedules (POST …/reschedule).
//
// Calls are retried as a frontend would: on 503, 429 rate_limited, 409
// idempotency_in_progress, retryable 5xx and lost connections, after
// Retry-After or a jittered backoff, a bounded number of times. A booking
// attempt that ends without a clear answer is settled by listing the
// person's bookings. 429 queue_required sends the person to the waiting
// room (POST /v1/queue, poll GET /v1/queue/{ticket} as Retry-After says)
// and the pass it gives travels in the X-Yeyak-Pass header of every later
// booking-flow call.
//
// The person mix follows the rotation rule (10부제): most people are born
// on a day ending in today's rotation digit (read from GET /v1/campaigns);
// OtherDigitShare are not, and they try anyway: their 422
// not_your_rotation_day is an expected refusal, not an error.
//
// People arrive in one of four shapes: steady (a constant rate), spike
// (the launch crowd, decaying exponentially), closed (N people in the
// flow at once) or feed (one person per value the caller sends: a twin
// paced by another system's admissions, with OnAdmitted). QueueDrain ends
// a surge's wait: people still in line leave it holding the place and
// estimated wait the queue last told them (Summary.Queue). Waiting-room
// calls travel on connections of their own, as each person of a crowd has
// theirs. Every call's latency goes into an HDR histogram per step;
// the Summary has p50/p90/p99/p99.9, errors by code, outcomes, and (with
// Record) every booking the target acknowledged, for invariant checks.
//
//	s, err := load.Run(ctx, load.Config{
//		Target:     "http://127.0.0.1:8080",
//		Population: population.Config{Seed: 2021, People: 100_000},
//		Shape:      load.ShapeSpike, Count: 5000, Decay: 10 * time.Second,
//		CancelShare: 0.05,
//	})
//	if err != nil { … }   // could not start: not loopback, no campaign …
//	s.Print(os.Stdout)
//
// Only loopback targets are accepted: Run resolves the target's host and
// refuses anything but 127.0.0.0/8 and ::1, and its dialer re-checks every
// connection. People leave from Sources client addresses of 127.1.0.0/16
// (64 by default), as a crowd comes from many homes: the target's
// per-address limits see a crowd, not one machine.
package load
