package cache_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/yeyak/yeyak/cache"
)

func TestOpsHandler(t *testing.T) {
	reg, pcfg := populated(2_000)
	c := newCache(t, reg, cache.Config{})
	ctx := context.Background()
	if _, err := c.Get(ctx, "P0000000001"); err != nil {
		t.Fatal(err)
	}
	do := func(h http.Handler, method, path, token string) (*httptest.ResponseRecorder, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, rec.Body.String(), err)
		}
		return rec, body
	}

	readOnly := c.OpsHandler("")
	h := c.OpsHandler("s3cret")

	rec, body := do(h, "GET", "/ops/cache", "")
	if rec.Code != 200 || body["misses"] != 1.0 || body["entries"] != 1.0 {
		t.Fatalf("GET /ops/cache = %d %v", rec.Code, body)
	}
	if rec, _ := do(h, "GET", "/ops/warmer", ""); rec.Code != 404 {
		t.Fatalf("GET /ops/warmer without a warmer = %d, want 404", rec.Code)
	}

	auth := []struct {
		name    string
		h       http.Handler
		token   string
		want    int
		errCode string
	}{
		{"no token configured", readOnly, "s3cret", 403, "forbidden"},
		{"missing token", h, "", 401, "unauthorized"},
		{"wrong token", h, "guess", 401, "unauthorized"},
		{"right token", h, "s3cret", 200, ""},
	}
	for _, tt := range auth {
		t.Run(tt.name, func(t *testing.T) {
			rec, body := do(tt.h, "POST", "/ops/cache/invalidate/P0000000001", tt.token)
			if rec.Code != tt.want {
				t.Fatalf("status = %d, want %d", rec.Code, tt.want)
			}
			if tt.errCode != "" {
				if e, _ := body["error"].(map[string]any); e["code"] != tt.errCode {
					t.Fatalf("body = %v, want error code %s", body, tt.errCode)
				}
			}
		})
	}
	// The invalidation took effect: the next lookup asks the registry.
	if e, err := c.Get(ctx, "P0000000001"); err != nil || e.Source != cache.SourceRegistry {
		t.Fatalf("Get after ops invalidate = %+v, %v", e, err)
	}

	if _, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: rosterOf(pcfg), ChunksPerSecond: 1000}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := do(h, "POST", "/ops/warmer/start?digit=12", "s3cret"); rec.Code != 400 {
		t.Fatalf("start digit=12 = %d, want 400", rec.Code)
	}
	if rec, _ := do(readOnly, "POST", "/ops/warmer/start?digit=4", "s3cret"); rec.Code != 403 {
		t.Fatalf("start on read-only surface = %d, want 403", rec.Code)
	}
	if rec, _ := do(h, "POST", "/ops/warmer/start?digit=4", "s3cret"); rec.Code != 202 {
		t.Fatalf("start = %d, want 202", rec.Code)
	}
	eventually(t, "warmer to finish", func() bool {
		_, body := do(h, "GET", "/ops/warmer", "")
		return body["state"] == string(cache.WarmerDone)
	})
	if rec, body := do(h, "POST", "/ops/warmer/pause", "s3cret"); rec.Code != 200 || body["digit"] != 4.0 {
		t.Fatalf("pause = %d %v", rec.Code, body)
	}
	_, body = do(h, "GET", "/ops/cache", "")
	if w, _ := body["warmer"].(map[string]any); w["progress"] != 1.0 {
		t.Fatalf("GET /ops/cache warmer = %v, want progress 1", body["warmer"])
	}
}

func TestMetrics(t *testing.T) {
	reg, _ := populated(10)
	pr := prometheus.NewRegistry()
	c := newCache(t, reg, cache.Config{Registerer: pr})
	ctx := context.Background()
	for range 3 {
		_, _ = c.Get(ctx, "P0000000001")
	}
	_, _ = c.Get(ctx, "nobody")
	_, _ = c.Get(ctx, "nobody")
	want := `
# HELP yeyak_cache_hits_total Lookups answered from memory, by kind (fresh, stale).
# TYPE yeyak_cache_hits_total counter
yeyak_cache_hits_total{kind="fresh"} 2
yeyak_cache_hits_total{kind="stale"} 0
# HELP yeyak_cache_misses_total Lookups not answerable from memory.
# TYPE yeyak_cache_misses_total counter
yeyak_cache_misses_total 2
# HELP yeyak_cache_negative_hits_total Lookups answered by a remembered not-found.
# TYPE yeyak_cache_negative_hits_total counter
yeyak_cache_negative_hits_total 1
# HELP yeyak_cache_entries Entries held in memory.
# TYPE yeyak_cache_entries gauge
yeyak_cache_entries 2
`
	if err := testutil.GatherAndCompare(pr, strings.NewReader(want),
		"yeyak_cache_hits_total", "yeyak_cache_misses_total", "yeyak_cache_negative_hits_total", "yeyak_cache_entries"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(pr); err != nil || n < 20 {
		t.Fatalf("gathered %d metrics, %v", n, err)
	}
	// A second cache on the same registerer is refused, not silently merged.
	if _, err := cache.New(reg, cache.Config{Registerer: pr}); err == nil {
		t.Fatal("second cache registered the same metrics")
	}
}
