package guard

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// addrResolver finds a request's client address: the connection's peer,
// or, when that peer is a trusted proxy, the address X-Forwarded-For names
// for it, walked right to left past any further trusted proxies. Entries
// left of the first untrusted one were written by the client and are
// never believed.
type addrResolver struct {
	trusted []netip.Prefix
}

// parsePrefixes reads CIDRs ("10.0.0.0/8", "fd00::/8") and single
// addresses ("192.0.2.7", "::1").
func parsePrefixes(specs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range specs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("guard: trusted proxy %q: %w", s, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("guard: trusted proxy %q: %w", s, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (a *addrResolver) isTrusted(ip netip.Addr) bool {
	for _, p := range a.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientAddr returns the client's address; the zero Addr when even the
// peer address cannot be read (such requests share one limit).
func (a *addrResolver) clientAddr(r *http.Request) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if !peer.IsValid() || len(a.trusted) == 0 || !a.isTrusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		line := hops[i]
		for {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				entry, line = line, ""
			}
			ip := parseHost(strings.TrimSpace(entry))
			if !ip.IsValid() {
				// Garbage where an address should be: the last trusted
				// hop is the best we know.
				return client
			}
			if !a.isTrusted(ip) {
				return ip
			}
			client = ip
			if line == "" {
				break
			}
		}
	}
	return client // every hop trusted: the leftmost
}

// parseHost reads "ip", "ip:port" or "[ipv6]:port", unmapping 4-in-6 and
// dropping any IPv6 zone.
func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().WithZone("")
	}
	return netip.Addr{}
}

type clientAddrKey struct{}

// ClientAddr returns the client address Guard.Edge resolved for the
// request (invalid when Edge did not run or the peer address was
// unreadable). It is personal data: never log or label metrics with it.
func ClientAddr(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientAddrKey{}).(netip.Addr)
	return a
}
