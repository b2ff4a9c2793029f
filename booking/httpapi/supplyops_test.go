package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/httpapi"
)

// TestSupplyOps drives POST /ops/supply over real HTTP on both stores: a
// good file applies, its replay changes nothing, a file with bad rows is
// refused with line numbers and nothing applied, a reduction below what is
// booked is refused with the affected bookings counted; the ops token is
// required.
func TestSupplyOps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		l, err := booking.NewSupplyLoader(booking.SupplyLoaderConfig{Store: e.db})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(httpapi.SupplyOpsHandler(l, "ops-secret", nil))
		t.Cleanup(srv.Close)
		post := func(tok, ctype, body string) (int, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest("POST", srv.URL+"/ops/supply?campaign=c2026", strings.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%d %s: %v", resp.StatusCode, b, err)
			}
			return resp.StatusCode, m
		}
		capacity := func() int {
			t.Helper()
			var n int
			if err := e.db.DB().Get(&n, "SELECT COALESCE(SUM(capacity),0) FROM quotas WHERE clinic_id = 'C000002' AND dose = 1"); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := capacity() // 3 dates × 22
		good := "clinic_id,date,product,dose,doses\nC000002," + vday.String() + ",pfizer,1,110\n"
		if st, m := post("", "text/csv", good); st != 401 {
			t.Fatalf("no token: %d %v", st, m)
		}
		if st, m := post("wrong", "text/csv", good); st != 401 {
			t.Fatalf("wrong token: %d %v", st, m)
		}
		if st, m := post("ops-secret", "text/plain", good); st != 415 {
			t.Fatalf("text/plain: %d %v", st, m)
		}
		st, m := post("ops-secret", "text/csv", good)
		if st != 200 || m["already_applied"] != false || m["rows"] != 1.0 {
			t.Fatalf("good file: %d %v", st, m)
		}
		if got := capacity(); got != before-22+110 {
			t.Fatalf("capacity %d, want %d", got, before-22+110)
		}
		if st, m := post("ops-secret", "text/csv", good); st != 200 || m["already_applied"] != true {
			t.Fatalf("replay: %d %v", st, m)
		}
		for _, tc := range []struct {
			name, file string
			line       float64
		}{
			{"bad date", good + "C000001,2026-13-01,pfizer,1,5\n", 3},
			{"unknown clinic", good + "C000003," + vday.String() + ",pfizer,1,5\nC999999," + vday.String() + ",pfizer,1,5\n", 4},
		} {
			st, m = post("ops-secret", "text/csv", tc.file)
			rows, _ := m["rows"].([]any)
			if st != 400 || len(rows) != 1 || rows[0].(map[string]any)["line"] != tc.line {
				t.Fatalf("%s: %d %v, want 400 naming line %v", tc.name, st, m, tc.line)
			}
		}
		if got := capacity(); got != before-22+110 {
			t.Fatalf("a refused file changed capacity: %d", got)
		}
		// Book two doses at Haeundae on vday, then try to cut its supply to 1.
		for _, p := range []string{personA, personB} {
			if r := e.book(e.token(p), "s-"+p, bookBody("C000002", vday, "pfizer")); r.status != 201 {
				t.Fatalf("book: %d %s", r.status, r.body)
			}
		}
		cut := "clinic_id,date,product,dose,doses\nC000002," + vday.String() + ",pfizer,1,1\n"
		st, m = post("ops-secret", "text/csv", cut)
		if st != 409 || m["affected_bookings"] != 2.0 || m["excess"] != 1.0 || len(m["conflicts"].([]any)) != 1 {
			t.Fatalf("cut below booked: %d %v", st, m)
		}
		if got := capacity(); got != before-22+110 {
			t.Fatalf("a refused cut changed capacity: %d", got)
		}
	})
}

// TestSupplyOpsWithoutToken: no token configured means no HTTP loading.
func TestSupplyOpsWithoutToken(t *testing.T) {
	h := httpapi.SupplyOpsHandler(nil, "", nil)
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		r := httptest.NewRequest("POST", "/ops/supply?campaign=c", strings.NewReader("x"))
		r.Header.Set("Authorization", auth)
		r.Header.Set("Content-Type", "text/csv")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 403 {
			t.Errorf("auth %q: %d", auth, w.Code)
		}
	}
}
