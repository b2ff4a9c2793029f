package load

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	ctx := context.Background()
	for _, target := range []string{
		"http://127.0.0.1:8080", "http://127.9.8.7", "http://[::1]:8080", "http://localhost:8080",
		"https://127.0.0.1", "http://[::ffff:127.0.0.1]:80",
	} {
		if err := CheckLoopback(ctx, target); err != nil {
			t.Errorf("CheckLoopback(%q) = %v, want nil", target, err)
		}
	}
	for _, target := range []string{
		"http://10.0.0.1:8080", "http://192.168.1.20", "http://8.8.8.8", "http://[2001:db8::1]",
		"http://[::ffff:10.0.0.1]", "http://0.0.0.0:8080",
	} {
		if err := CheckLoopback(ctx, target); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("CheckLoopback(%q) = %v, want ErrNotLoopback", target, err)
		}
	}
	for _, target := range []string{"ftp://127.0.0.1", "127.0.0.1:8080", "http://", "http://nonexistent.invalid"} {
		if err := CheckLoopback(ctx, target); err == nil {
			t.Errorf("CheckLoopback(%q) = nil, want an error", target)
		}
	}
}

// TestDialerRefusesNonLoopback: whatever a resolver says, the client only
// connects to loopback addresses.
func TestDialerRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:80", "[2001:db8::1]:80", "192.0.2.1:443"} {
		if err := loopbackOnly("tcp", addr, nil); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("loopbackOnly(%s) = %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:80"} {
		if err := loopbackOnly("tcp", addr, nil); err != nil {
			t.Errorf("loopbackOnly(%s) = %v", addr, err)
		}
	}
	c := NewClient(1, 2*time.Second)
	_, err := c.Get("http://192.0.2.1:9/") // TEST-NET-1: must fail before any packet leaves
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("GET a TEST-NET address: %v, want ErrNotLoopback", err)
	}
}

// TestRunRefusesNonLoopbackTarget: Run sends nothing to a target that is
// not on this machine.
func TestRunRefusesNonLoopbackTarget(t *testing.T) {
	_, err := Run(context.Background(), Config{Target: "http://192.0.2.1:8080", Count: 1})
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Run: %v, want ErrNotLoopback", err)
	}
	// And a redirect off loopback is not followed.
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "http://192.0.2.1/v1/campaigns", http.StatusFound)
	}))
	defer srv.Close()
	if _, err := Run(context.Background(), Config{Target: srv.URL, Count: 1}); err == nil {
		t.Fatal("Run followed a redirect to find its campaign")
	}
	if hits.Load() != 1 {
		t.Fatalf("target hit %d times", hits.Load())
	}
}
