// Package admission is yeyak's surge admission: a fair virtual waiting room
// that turns a launch-morning crowd into a steady booking stream the system
// can serve.
//
// A Controller admits people to the booking flow (/v1/me/eligibility,
// /v1/clinics, /v1/bookings…) at an adaptive rate. While nobody waits,
// requests pass freely (a token bucket at the admission rate). Beyond it,
// callers get 429 queue_required and join the line: POST /v1/queue gives a
// ticket, GET /v1/queue/{ticket} gives the position, the estimated wait, a
// Retry-After telling when to poll next and, once admitted, a pass: an
// HMAC-signed, short-lived token bound to the person, presented in the
// X-Yeyak-Pass header. Tickets and passes verify without shared state; the
// line itself lives in process (NewMemoryStore, the default) or in Redis
// (NewRedisStore) so several yeyakd instances share one line.
//
// Fairness: first come, first served by server-side arrival, except that
// everyone who joins in the pre-opening window (Config.PreOpening) before an
// opening is placed in a uniformly random order at the opening, so arriving
// at 08:59:59.999 buys nothing. One place per person: joining again returns
// the same place.
//
// The control law is AIMD (see Law): each interval, if the booking path's
// latency p90 or p99, its error rate, the database pool wait or the host's
// goroutine scheduling latency exceeds its target (with enough samples), rate ×= Decrease and the rate settles for
// Law.Settle; if all are healthy with room (within Headroom of the targets,
// the booking writes' p90 within Gradient of its recent best) and people
// are waiting, rate += Increase, in smaller steps near the rate of the last
// decrease; the rate stays in [Floor, Ceiling]. The host feeds it with
// Observe, ObserveWrite, ObservePoolWait and ObserveSchedLatency (a
// SchedSampler reads the latter from runtime/metrics). docs/admission.md has
// the figures (memory per waiting person, the simulation of 10 million
// arrivals).
//
// Mounting it takes a few lines:
//
//	adm, err := admission.New(admission.Config{
//		Keys:       []admission.Key{{ID: "2021a", Secret: secret}},
//		PersonFunc: func(r *http.Request) (string, bool) { return personFromToken(r) },
//		Openings:   admission.OpeningsOf(campaign),
//		Floor:      50, Ceiling: 2000,
//	})
//	if err != nil { … }
//	adm.Mount(mux)                                      // POST /v1/queue, GET /v1/queue/{ticket}, GET /queue
//	mux.Handle("/v1/bookings", adm.Gate(authenticate(adm.Middleware(bookings)))) // and the other booking-flow routes
//	// in the booking handlers: adm.Observe(elapsed, status >= 500) for
//	// reads, adm.ObserveWrite(elapsed, status >= 500) for bookings
//
// The Controller runs no goroutine: the line advances lazily on requests.
package admission
