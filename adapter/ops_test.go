package adapter_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/yeyak/yeyak/adapter"
)

func TestOpsHandler(t *testing.T) {
	f := newFacade(t, &fakeRegistry{}, adapter.FacadeConfig{})
	tests := []struct {
		name       string
		token      string // configured
		method     string
		path       string
		auth       string
		wantStatus int
		wantCode   string
		wantForced string // write breaker after the request
	}{
		{name: "list", method: "GET", path: "/ops/breakers", wantStatus: 200},
		{name: "read-only without token", method: "POST", path: "/ops/breakers/write/force-open", auth: "Bearer x", wantStatus: 403, wantCode: "ops_read_only"},
		{name: "missing auth", token: "s3cret", method: "POST", path: "/ops/breakers/write/force-open", wantStatus: 401, wantCode: "unauthorized"},
		{name: "wrong token", token: "s3cret", method: "POST", path: "/ops/breakers/write/force-open", auth: "Bearer s3cres", wantStatus: 401, wantCode: "unauthorized"},
		{name: "unknown breaker", token: "s3cret", method: "POST", path: "/ops/breakers/both/force-open", auth: "Bearer s3cret", wantStatus: 404, wantCode: "not_found"},
		{name: "unknown action", token: "s3cret", method: "POST", path: "/ops/breakers/write/explode", auth: "Bearer s3cret", wantStatus: 404, wantCode: "not_found"},
		{name: "force open", token: "s3cret", method: "POST", path: "/ops/breakers/write/force-open", auth: "Bearer s3cret", wantStatus: 200, wantForced: "open"},
		{name: "force closed", token: "s3cret", method: "POST", path: "/ops/breakers/write/force-closed", auth: "Bearer s3cret", wantStatus: 200, wantForced: "closed"},
		{name: "reset", token: "s3cret", method: "POST", path: "/ops/breakers/write/reset", auth: "Bearer s3cret", wantStatus: 200, wantForced: ""},
		{name: "GET cannot mutate", token: "s3cret", method: "GET", path: "/ops/breakers/write/force-open", auth: "Bearer s3cret", wantStatus: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			f.OpsHandler(tc.token).ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			switch {
			case tc.wantCode != "":
				var body struct {
					Error struct {
						Code      string `json:"code"`
						Message   string `json:"message"`
						Retryable *bool  `json:"retryable"`
					} `json:"error"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != tc.wantCode || body.Error.Message == "" || body.Error.Retryable == nil {
					t.Fatalf("error body %s (%v), want code %s", rec.Body, err, tc.wantCode)
				}
			case tc.method == "POST":
				var s adapter.BreakerStatus
				if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || s.Name != "write" || s.Forced != tc.wantForced {
					t.Fatalf("body %s (%v), want write breaker forced %q", rec.Body, err, tc.wantForced)
				}
			case tc.path == "/ops/breakers":
				var body struct{ Breakers []adapter.BreakerStatus }
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Breakers) != 2 || body.Breakers[0].State != "closed" {
					t.Fatalf("list %s (%v)", rec.Body, err)
				}
			}
		})
	}
}
