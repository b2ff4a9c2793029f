package guard_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/yeyak/yeyak/booking/httpapi/guard"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newGuard(t testing.TB, cfg guard.Config) *guard.Guard {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	g, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func request(remote string, xff ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/campaigns", nil)
	r.RemoteAddr = remote
	for _, h := range xff {
		r.Header.Add("X-Forwarded-For", h)
	}
	return r
}

func TestClientAddr(t *testing.T) {
	proxies := []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"}
	tests := []struct {
		name    string
		trusted []string
		remote  string
		xff     []string
		want    string // "" is the invalid Addr
	}{
		{"no proxies: peer", nil, "203.0.113.9:1234", nil, "203.0.113.9"},
		{"no proxies trusted: XFF ignored", nil, "203.0.113.9:1234", []string{"1.2.3.4"}, "203.0.113.9"},
		{"spoofed XFF from an untrusted peer", proxies, "198.51.100.7:5555", []string{"1.2.3.4"}, "198.51.100.7"},
		{"spoofed XFF from a peer next to a trusted range", proxies, "11.0.0.1:5555", []string{"10.0.0.1"}, "11.0.0.1"},
		{"trusted proxy: its client", proxies, "10.0.0.2:80", []string{"203.0.113.5"}, "203.0.113.5"},
		{"client-written entries left of the real one are ignored", proxies, "10.0.0.2:80", []string{"1.1.1.1, 203.0.113.5"}, "203.0.113.5"},
		{"proxy chain", proxies, "10.0.0.2:80", []string{"203.0.113.5, 10.0.0.9, 192.0.2.7"}, "203.0.113.5"},
		{"several header lines in order", proxies, "10.0.0.2:80", []string{"1.1.1.1", "203.0.113.5, 10.0.0.9"}, "203.0.113.5"},
		{"spoof in a separate line before the real one", proxies, "10.0.0.2:80", []string{"10.0.0.3", "203.0.113.5"}, "203.0.113.5"},
		{"every hop trusted: leftmost", proxies, "10.0.0.2:80", []string{"10.1.1.1, 10.0.0.9"}, "10.1.1.1"},
		{"garbage hop: last trusted one", proxies, "10.0.0.2:80", []string{"garbage, 10.0.0.9"}, "10.0.0.9"},
		{"garbage only: the proxy", proxies, "10.0.0.2:80", []string{"unknown"}, "10.0.0.2"},
		{"empty entry", proxies, "10.0.0.2:80", []string{"203.0.113.5, "}, "10.0.0.2"},
		{"no XFF behind a proxy: the proxy", proxies, "10.0.0.2:80", nil, "10.0.0.2"},
		{"entry with port", proxies, "10.0.0.2:80", []string{"203.0.113.5:4711"}, "203.0.113.5"},
		{"IPv6 entry with port", proxies, "10.0.0.2:80", []string{"[2001:db8::1]:80"}, "2001:db8::1"},
		{"bare IPv6 entry", proxies, "10.0.0.2:80", []string{" 2001:db8::1 "}, "2001:db8::1"},
		{"IPv6 proxy", proxies, "[fd00::1]:443", []string{"2001:db8::2"}, "2001:db8::2"},
		{"4-in-6 peer is unmapped", proxies, "[::ffff:10.0.0.2]:80", []string{"203.0.113.5"}, "203.0.113.5"},
		{"4-in-6 entry is unmapped", proxies, "10.0.0.2:80", []string{"::ffff:203.0.113.5"}, "203.0.113.5"},
		{"single trusted address", proxies, "192.0.2.7:80", []string{"203.0.113.5"}, "203.0.113.5"},
		{"neighbour of a single trusted address", proxies, "192.0.2.8:80", []string{"203.0.113.5"}, "192.0.2.8"},
		{"unreadable peer", proxies, "pipe", []string{"203.0.113.5"}, ""},
		{"peer without port", proxies, "203.0.113.9", nil, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuard(t, guard.Config{TrustedProxies: tt.trusted})
			got := g.ClientAddr(request(tt.remote, tt.xff...))
			want := netip.Addr{}
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Fatalf("ClientAddr = %v, want %v", got, want)
			}
		})
	}
}

func TestClientAddrInContext(t *testing.T) {
	g := newGuard(t, guard.Config{TrustedProxies: []string{"10.0.0.0/8"}})
	var got netip.Addr
	h := g.Edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = guard.ClientAddr(r.Context()) }))
	h.ServeHTTP(httptest.NewRecorder(), request("10.0.0.2:80", "203.0.113.5"))
	if got != netip.MustParseAddr("203.0.113.5") {
		t.Fatalf("ClientAddr in the handler = %v", got)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []guard.Config{
		{TrustedProxies: []string{"10.0.0.0/33"}},
		{TrustedProxies: []string{"proxy.example"}},
		{IPv6Prefix: 8},
		{IPv6Prefix: 129},
		{PersonBurst: -1},
		{AddrBurst: -1},
		{MaxKeys: -5},
	} {
		cfg.Logger = quiet
		if _, err := guard.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// FuzzClientAddr: whatever X-Forwarded-For says, the client address is the
// peer or an address written in the header, and an untrusted peer's
// header is never believed.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"", "1.2.3.4", "1.1.1.1, 10.0.0.9", "garbage, 10.0.0.9", "[::1]:80,", ",,,", "10.0.0.1,10.0.0.2,203.0.113.1:9", "fd00::1%eth0"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	g := newGuard(f, guard.Config{TrustedProxies: []string{"10.0.0.0/8", "fd00::/8"}})
	f.Fuzz(func(t *testing.T, xff string, trustedPeer bool) {
		peer := "198.51.100.7:1"
		if trustedPeer {
			peer = "10.0.0.2:1"
		}
		got := g.ClientAddr(request(peer, xff))
		if !got.IsValid() {
			t.Fatalf("invalid client address for XFF %q", xff)
		}
		peerAddr := netip.MustParseAddrPort(peer).Addr()
		if !trustedPeer && got != peerAddr {
			t.Fatalf("untrusted peer's XFF %q believed: %v", xff, got)
		}
		if got == peerAddr {
			return
		}
		found := false
		for e := range strings.SplitSeq(xff, ",") {
			e = strings.TrimSpace(e)
			if ap, err := netip.ParseAddrPort(e); err == nil && ap.Addr().Unmap().WithZone("") == got {
				found = true
			} else if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil && a.Unmap().WithZone("") == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("client address %v is neither the peer nor in XFF %q", got, xff)
		}
	})
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
