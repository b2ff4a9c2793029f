package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/yeyak/yeyak/mocks/registry"
)

// serve runs r's Handler on an httptest server; cleanup clears the
// faults first, so no stalled handler keeps the server from closing.
func serve(t *testing.T, r *registry.Registry) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		_ = r.SetFaults(registry.Faults{})
		srv.Close()
	})
	return srv
}

// call does one request and decodes a JSON answer into a map.
func call(t *testing.T, method, url, body string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object: %v", method, url, b, err)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q", method, url, ct)
	}
	return resp.StatusCode, resp.Header, m
}

func TestGatewayPerson(t *testing.T) {
	r := newTestRegistry(t)
	srv := serve(t, r)
	api := srv.URL + "/api/v1"

	code, _, m := call(t, "GET", api+"/persons/"+bob.ID, "")
	if code != 200 {
		t.Fatalf("GET person: %d %v", code, m)
	}
	want := `{"brthDt":"19850701","cntraYn":"N","doses":[{"doseNo":1,"prdtCd":"pfizer","vaccDt":"20210503"}],"exclYn":"N","prsnId":"P0000000002","reservations":[]}`
	if got, _ := json.Marshal(m); string(got) != want {
		t.Fatalf("person JSON\n got %s\nwant %s", got, want)
	}
	code, _, m = call(t, "GET", api+"/persons/"+carol.ID, "")
	if code != 200 || m["cntraYn"] != "Y" || m["exclYn"] != "N" {
		t.Fatalf("carol: %d %v", code, m)
	}
	for _, id := range []string{ghost.ID, "P0000000099"} {
		code, _, m = call(t, "GET", api+"/persons/"+id, "")
		if code != 404 || m["resultCode"] != "E404" || m["resultMsg"] != "person not found" {
			t.Fatalf("unknown %s: %d %v", id, code, m)
		}
	}
	code, _, m = call(t, "GET", api+"/ping", "")
	if code != 200 || m["status"] != "ok" {
		t.Fatalf("ping: %d %v", code, m)
	}
	code, _, _ = call(t, "GET", api+"/nothing-here", "")
	if code != 404 {
		t.Fatalf("unknown endpoint: %d", code)
	}
}

func TestGatewayBatch(t *testing.T) {
	r := newTestRegistry(t)
	srv := serve(t, r)
	url := srv.URL + "/api/v1/persons:batch"

	code, _, m := call(t, "POST", url, fmt.Sprintf(`{"ids":[%q,%q,%q,"nobody"]}`, alice.ID, ghost.ID, dave.ID))
	if code != 200 {
		t.Fatalf("batch: %d %v", code, m)
	}
	ps := m["persons"].([]any)
	if len(ps) != 2 || ps[0].(map[string]any)["prsnId"] != alice.ID || ps[1].(map[string]any)["exclYn"] != "Y" {
		t.Fatalf("persons %v", ps)
	}
	if code, _, m = call(t, "POST", url, `{"ids":[]}`); code != 200 || len(m["persons"].([]any)) != 0 {
		t.Fatalf("empty batch: %d %v", code, m)
	}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("P%010d", i)
	}
	body, _ := json.Marshal(map[string]any{"ids": ids})
	if code, _, m = call(t, "POST", url, string(body)); code != 200 {
		t.Fatalf("1000 ids: %d %v", code, m)
	}
	body, _ = json.Marshal(map[string]any{"ids": append(ids, "P0000001000")})
	if code, _, m = call(t, "POST", url, string(body)); code != 400 || m["resultCode"] != "E400" {
		t.Fatalf("1001 ids: %d %v", code, m)
	}
	for _, bad := range []string{`{"ids":`, `[]`, `{}`, `{"ids":"P1"}`} {
		if code, _, _ = call(t, "POST", url, bad); code != 400 {
			t.Errorf("body %s: %d, want 400", bad, code)
		}
	}
}

func TestGatewayReservations(t *testing.T) {
	r := newTestRegistry(t)
	srv := serve(t, r)
	api := srv.URL + "/api/v1"
	body := func(person string, dose int) string {
		return fmt.Sprintf(`{"prsnId":%q,"cmpnId":"c2021","orgId":"C000001","rsvtDt":"20210826","prdtCd":"pfizer","doseNo":%d}`, person, dose)
	}

	code, _, m := call(t, "PUT", api+"/reservations/r-1", body(alice.ID, 1))
	if code != 201 {
		t.Fatalf("first PUT: %d %v", code, m)
	}
	if code, _, m = call(t, "PUT", api+"/reservations/r-1", body(alice.ID, 1)); code != 200 {
		t.Fatalf("repeated PUT: %d %v", code, m)
	}
	code, _, m = call(t, "GET", api+"/persons/"+alice.ID, "")
	rs := m["reservations"].([]any)
	want := `{"cmpnId":"c2021","doseNo":1,"orgId":"C000001","prdtCd":"pfizer","prsnId":"P0000000001","rsvtDt":"20210826","rsvtId":"r-1"}`
	if got, _ := json.Marshal(rs[0]); code != 200 || len(rs) != 1 || string(got) != want {
		t.Fatalf("reservations %s", got)
	}
	if rc, _ := r.WritesFor("r-1"); rc != 2 {
		t.Fatalf("writes %d", rc)
	}

	for _, tc := range []struct {
		name, id, body string
		code           int
	}{
		{"unknown person", "r-2", body(ghost.ID, 1), 422},
		{"contraindicated", "r-3", body(carol.ID, 1), 422},
		{"excluded", "r-4", body(dave.ID, 1), 422},
		{"dose already given", "r-5", body(bob.ID, 1), 422},
		{"bad json", "r-6", `{"prsnId":`, 400},
		{"missing field", "r-7", `{"prsnId":"P0000000001","cmpnId":"c","orgId":"o","rsvtDt":"20210826","prdtCd":"pfizer"}`, 400},
		{"bad date", "r-8", strings.Replace(body(alice.ID, 1), "20210826", "2021-08-26", 1), 400},
		{"impossible date", "r-9", strings.Replace(body(alice.ID, 1), "20210826", "20210230", 1), 400},
		{"dose 0", "r-10", body(alice.ID, 0), 400},
		{"id too long", strings.Repeat("x", 41), body(alice.ID, 1), 400},
	} {
		code, _, m := call(t, "PUT", api+"/reservations/"+tc.id, tc.body)
		wantCode := fmt.Sprintf("E%d", tc.code)
		if code != tc.code || m["resultCode"] != wantCode || m["resultMsg"] == "" {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, m, tc.code, wantCode)
		}
		if _, ok := r.Reservation(tc.id); ok {
			t.Errorf("%s: stored", tc.name)
		}
	}
	if code, _, m = call(t, "PUT", api+"/reservations/r-2", body(ghost.ID, 1)); code != 422 || m["resultMsg"] != "person unknown" {
		t.Errorf("422 message %d %v", code, m)
	}

	for range 2 {
		if code, _, m = call(t, "DELETE", api+"/reservations/r-1", ""); code != 200 {
			t.Fatalf("DELETE: %d %v", code, m)
		}
	}
	if code, _, _ = call(t, "DELETE", api+"/reservations/never", ""); code != 200 {
		t.Fatalf("DELETE unknown: %d", code)
	}
	if res, _ := r.Reservation("r-1"); res.Status != "C" {
		t.Fatalf("status %q", res.Status)
	}
	if code, _, m = call(t, "GET", api+"/persons/"+alice.ID, ""); code != 200 || len(m["reservations"].([]any)) != 0 {
		t.Fatalf("cancelled reservation listed: %v", m)
	}
	// Redelivered record of a cancelled reservation: 200, stays cancelled.
	if code, _, _ = call(t, "PUT", api+"/reservations/r-1", body(alice.ID, 1)); code != 200 {
		t.Fatalf("PUT after cancel: %d", code)
	}
	if res, _ := r.Reservation("r-1"); res.Status != "C" {
		t.Fatal("cancelled reservation revived")
	}
	code, _, m = call(t, "GET", srv.URL+"/mock/reservations/r-1", "")
	if code != 200 || m["sttsCd"] != "C" || m["records"] != 3.0 || m["cancels"] != 2.0 {
		t.Fatalf("/mock/reservations: %d %v", code, m)
	}
}

func TestControlEndpoints(t *testing.T) {
	r := newTestRegistry(t)
	srv := serve(t, r)

	code, _, m := call(t, "PUT", srv.URL+"/mock/faults", `{"latency":"5ms","latencyTail":{"p":0.1,"extra":"1s"},"errorRate":0.25,"capacity":10,"scope":"write"}`)
	if code != 200 {
		t.Fatalf("PUT faults: %d %v", code, m)
	}
	f := r.Faults()
	if f.Latency.String() != "5ms" || f.LatencyTail.P != 0.1 || f.LatencyTail.Extra.String() != "1s" || f.ErrorRate != 0.25 || f.Capacity != 10 || f.Scope != "write" {
		t.Fatalf("faults %+v", f)
	}
	code, _, m = call(t, "GET", srv.URL+"/mock/faults", "")
	if code != 200 || m["latency"] != "5ms" || m["errorRate"] != 0.25 {
		t.Fatalf("GET faults: %d %v", code, m)
	}
	for _, bad := range []string{`{"errorRate":2}`, `{"latency":"soon"}`, `{"scope":"all"}`, `{"nope":1}`, `{`} {
		if code, _, _ = call(t, "PUT", srv.URL+"/mock/faults", bad); code != 400 {
			t.Errorf("PUT faults %s: %d, want 400", bad, code)
		}
	}
	call(t, "GET", srv.URL+"/api/v1/persons/"+alice.ID, "")
	code, _, m = call(t, "GET", srv.URL+"/mock/stats", "")
	if code != 200 || m["reads"] != 1.0 {
		t.Fatalf("stats: %d %v", code, m)
	}
	if code, _, _ = call(t, "POST", srv.URL+"/mock/reset", ""); code != 200 {
		t.Fatalf("reset: %d", code)
	}
	if !r.Faults().Healthy() || r.Stats().Reads != 0 {
		t.Fatalf("after reset: %+v %+v", r.Faults(), r.Stats())
	}
}
