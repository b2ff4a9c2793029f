// Package registry is a faithful fake of the legacy immunization registry,
// both faces of it:
//
//   - Registry: an in-memory adapter.Registry with the real registry's
//     business rules (docs/legacy-schema.md), seeded from a synthetic
//     population, that counts every read and every write it receives;
//   - Handler / Start: the same registry as the HTTP gateway
//     (docs/legacy-gateway.md), on a listener the Server owns;
//   - CreateSchema / Seed: the Oracle-style schema created and loaded in
//     PostgreSQL or SQLite, for the Oracle adapter's tests.
//
// Faults — latency with a long tail, error rates, throttling, a full
// outage (connection refused), a stall (accepted, never answered) and a
// capacity beyond which it slows down — are switched at run time through
// SetFaults or PUT /mock/faults and apply to both the Go API and the HTTP
// face.
//
//	reg := registry.New(registry.Config{Population: population.Config{Seed: 1, People: 100_000}})
//	srv, err := reg.Start("127.0.0.1:0")
//	if err != nil { … }
//	defer srv.Close()
//	// point the gateway adapter at srv.URL(); then, mid-test:
//	reg.SetFaults(registry.Faults{Stall: true})
//	…
//	records, cancels := reg.WritesFor(bookingID) // deliveries received
//	res, ok := reg.Reservation(bookingID)         // the effect
//
// It is for tests, the demo and load tools; production code never imports it.
package registry
