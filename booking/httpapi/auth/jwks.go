package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// ErrKeysUnavailable is wrapped (together with ErrInvalidToken) when a
// token cannot be checked because its provider's keys could not be had: the
// JWKS endpoint has never answered, or is backing off after failures, or
// the in-process key source failed. The token may well be genuine; an API
// can answer 503 instead of 401 by testing this error first.
var ErrKeysUnavailable = errors.New("auth: provider keys unavailable")

// jwksSource fetches, caches and refreshes one provider's JWKS.
//
// Fetches never run on a request's own context: one at a time per provider,
// in a goroutine bounded by fetchTimeout and owned by the Verifier (Close
// cancels and waits for it). A request whose key is known never waits: a
// stale set is refreshed in the background. A request whose kid is unknown
// (or whose provider has no keys yet) starts a fetch if the rate limit and
// the failure backoff allow it, or joins the one in flight, and waits for
// it at most wait. After a failed fetch no other is started before the
// backoff (doubling per consecutive failure, capped) has passed, so a dead
// endpoint costs one request per backoff period, not one per token.
type jwksSource struct {
	name         string
	url          string
	client       *http.Client
	now          func() time.Time
	log          *slog.Logger
	refresh      time.Duration
	minRefresh   time.Duration
	backoff      time.Duration
	maxBackoff   time.Duration
	fetchTimeout time.Duration
	wait         time.Duration
	owner        *fetchOwner

	mu        sync.Mutex
	set       jwk.Set
	fetchedAt time.Time     // last successful fetch
	triedAt   time.Time     // start of the last attempt
	failures  int           // consecutive failed attempts
	retryAt   time.Time     // no attempt before this after a failure
	inflight  chan struct{} // closed when the running fetch ends; nil when none runs
	lastErr   error
}

// fetchOwner is the Verifier's hold on its background fetches.
type fetchOwner struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

// start runs f in a goroutine the owner tracks, unless the owner is closed.
func (o *fetchOwner) start(f func(ctx context.Context)) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		f(o.ctx)
	}()
	return true
}

func (o *fetchOwner) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.cancel()
	o.wg.Wait()
}

// key returns the key for kid (any single key when kid is empty).
func (s *jwksSource) key(ctx context.Context, kid string) (jwk.Key, error) {
	now := s.now()
	s.mu.Lock()
	set := s.set
	if set != nil && hasKey(set, kid) {
		if now.Sub(s.fetchedAt) >= s.refresh {
			s.startLocked(now) // background refresh; this request does not wait
		}
		s.mu.Unlock()
		return pick(set, kid, s.name)
	}
	wait := s.inflight
	if wait == nil {
		wait = s.startLocked(now)
	}
	s.mu.Unlock()

	if wait != nil {
		t := time.NewTimer(s.wait)
		select {
		case <-wait:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
		set = s.set
		s.mu.Unlock()
	}
	if set == nil {
		return nil, fmt.Errorf("%w: provider %s: %w", ErrInvalidToken, s.name, ErrKeysUnavailable)
	}
	return pick(set, kid, s.name)
}

func hasKey(set jwk.Set, kid string) bool {
	if kid == "" {
		return set.Len() == 1
	}
	_, ok := set.LookupKeyID(kid)
	return ok
}

// startLocked starts a fetch when none runs, the failure backoff is over and
// the last attempt is at least minRefresh old (or no keys are known yet).
// It returns the channel closed when the fetch ends, nil when none started.
// s.mu is held.
func (s *jwksSource) startLocked(now time.Time) chan struct{} {
	if s.inflight != nil {
		return nil
	}
	if now.Before(s.retryAt) {
		return nil
	}
	if s.set != nil && now.Sub(s.triedAt) < s.minRefresh {
		return nil
	}
	done := make(chan struct{})
	s.inflight = done
	s.triedAt = now
	if !s.owner.start(func(ctx context.Context) { s.fetch(ctx, done) }) {
		s.inflight = nil
		return nil
	}
	return done
}

func (s *jwksSource) fetch(ctx context.Context, done chan struct{}) {
	defer close(done)
	set, err := s.get(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = nil
	now := s.now()
	if err != nil {
		s.failures++
		d := s.backoff << min(s.failures-1, 20)
		if d > s.maxBackoff || d <= 0 {
			d = s.maxBackoff
		}
		s.retryAt = now.Add(d)
		s.lastErr = err
		s.log.Warn("jwks fetch failed; keeping the keys already known",
			"provider", s.name, "have_keys", s.set != nil, "failures", s.failures,
			"retry_in", d.String(), "err", err)
		return
	}
	if s.failures > 0 {
		s.log.Info("jwks fetch recovered", "provider", s.name, "after_failures", s.failures)
	}
	s.set, s.fetchedAt, s.failures, s.retryAt, s.lastErr = set, now, 0, time.Time{}, nil
}

func (s *jwksSource) get(ctx context.Context) (jwk.Set, error) {
	ctx, cancel := context.WithTimeout(ctx, s.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("jwks: read: %w", err)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if set.Len() == 0 {
		return nil, errors.New("jwks: empty key set")
	}
	return set, nil
}

// prefetch starts a fetch if none runs and no keys are known, and waits for
// the one in flight until ctx ends. It reports whether keys are known.
func (s *jwksSource) prefetch(ctx context.Context) error {
	s.mu.Lock()
	wait := s.inflight
	if wait == nil && s.set == nil {
		wait = s.startLocked(s.now())
	}
	s.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("auth: provider %s: jwks: %w", s.name, ctx.Err())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		return fmt.Errorf("auth: provider %s: %w: %v", s.name, ErrKeysUnavailable, s.lastErr)
	}
	return nil
}

// checkJWKSURL accepts https URLs, and http only towards a loopback host
// (tests, a local mock provider, a sidecar): keys fetched in clear text
// over a network could be swapped by anyone on the path.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("JWKS URL: %w", err)
	}
	if u.Host == "" || u.User != nil {
		return errors.New("JWKS URL must be https://host/… without credentials")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return errors.New("JWKS URL must be https (plain http is allowed only to a loopback host)")
	}
	return errors.New("JWKS URL must be https")
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
