// Package gateway is the adapter.Registry that talks to the legacy
// registry's HTTP gateway (JSON under /api/v1, docs/legacy-gateway.md)
// through github.com/hashicorp/go-retryablehttp.
//
// It retries, with jittered exponential backoff, connection errors, 429 and
// 5xx — and only those, never other 4xx — and every call it makes is safe to
// retry (see Client). It honours Retry-After, bounds each attempt
// (AttemptTimeout) and each request as a whole, retries and waits included
// (Timeout, 10s by default, or the caller's context when that is shorter),
// keeps a small bounded connection pool (MaxConnsPerHost), and sends bulk reads in chunks
// of at most 1000 ids. Answers map onto the port's errors: 404 →
// adapter.ErrNotFound, 422 and 400 → adapter.ErrRejected, 429/5xx/connection
// errors/timeouts → adapter.ErrUnavailable, each wrapped with the route
// ("GET /persons/{id}") — never the URL, which carries a person id.
//
// Put the adapter.Facade in front of it: the client retries one call, the
// facade decides whether to call at all.
//
//	gw, err := gateway.New(gateway.Config{BaseURL: "http://registry-gw:7070"})
//	if err != nil { … }
//	reg, err := adapter.NewFacade(gw, adapter.FacadeConfig{})
package gateway
