package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrNotLoopback is returned for a target that is not on this machine.
var ErrNotLoopback = errors.New("load: target is not a loopback address (only 127.0.0.0/8, ::1 and localhost are allowed)")

// CheckLoopback resolves the host of target (a base URL) and returns an
// error wrapping ErrNotLoopback unless every address it resolves to is a
// loopback address. The load tool generates real traffic: it must never be
// pointed at a machine other than this one.
func CheckLoopback(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("load: target %q: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("load: target %q: scheme must be http or https", target)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("load: target %q has no host", target)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Unmap().IsLoopback() {
			return fmt.Errorf("%w: %s", ErrNotLoopback, host)
		}
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return fmt.Errorf("load: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("load: %s resolves to nothing", host)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return fmt.Errorf("%w: %s resolves to %s", ErrNotLoopback, host, a)
		}
	}
	return nil
}

// loopbackOnly is a net.Dialer Control function that refuses to connect
// anywhere but a loopback address, whatever a resolver answered meanwhile.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("load: dial %s: %w", address, err)
	}
	if !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("%w: dial %s", ErrNotLoopback, address)
	}
	return nil
}

// NewClient returns an HTTP client for the load: at most conns connections
// (all kept alive), each call bounded by timeout, and a dialer that only
// connects to loopback addresses.
func NewClient(conns int, timeout time.Duration) *http.Client { return newClient(conns, timeout, nil) }

// SourceAddr returns the i-th client address the load spreads people
// over: 127.1.x.y, all of them loopback (Linux routes 127.0.0.0/8 to lo).
func SourceAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(i%250 + 1)})
}

// newClient is NewClient whose connections leave from source (nil: the
// kernel's choice).
func newClient(conns int, timeout time.Duration, source net.Addr) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly, LocalAddr: source}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxConnsPerHost:     conns,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
		},
		// Redirects would leave the checked target.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
