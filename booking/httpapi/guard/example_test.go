package guard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/yeyak/yeyak/booking/httpapi"
	"github.com/yeyak/yeyak/booking/httpapi/auth"
	"github.com/yeyak/yeyak/booking/httpapi/guard"
)

// Example mounts the guard around a handler the way httpapi's Edge and
// Flow hooks do: per-address limits first, then, once the caller is
// known, the per-person limit and the session rule. The laptop's refused
// request still counts against the person's rate.
func Example() {
	g, _ := guard.New(guard.Config{PersonBurst: 3, TrustedProxies: []string{"10.0.0.0/8"}, Logger: quiet})
	sessions, _ := guard.NewSessions(guard.SessionConfig{Logger: quiet})

	// identity stands for httpapi.IdentityFrom: the verified token's caller.
	identity := func(ctx context.Context) (auth.Identity, bool) {
		id, ok := ctx.Value(idKey{}).(auth.Identity)
		return id, ok
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	h := g.Edge(g.PersonLimit(identity)(sessions.Middleware(identity)(api)))

	phone := auth.Identity{PersonID: "P0000000042", Session: "phone", Expires: time.Now().Add(30 * time.Minute)}
	laptop := auth.Identity{PersonID: "P0000000042", Session: "laptop", Expires: time.Now().Add(30 * time.Minute)}
	for _, id := range []auth.Identity{phone, laptop, phone, phone} {
		r := httptest.NewRequest(http.MethodGet, "/v1/bookings", nil)
		r.RemoteAddr = "10.0.0.2:4711"                 // the load balancer …
		r.Header.Set("X-Forwarded-For", "203.0.113.5") // … for this client
		r = r.WithContext(context.WithValue(r.Context(), idKey{}, id))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		fmt.Println(strings.TrimSpace(fmt.Sprint(id.Session, " ", rec.Code, " ", rec.Header().Get("Retry-After"))))
	}
	// Output:
	// phone 200
	// laptop 409 1800
	// phone 200
	// phone 429 1
}

// The hooks fit httpapi.Config as documented (checked at compile time).
var (
	_ guard.IdentityFunc                = httpapi.IdentityFrom
	_ func(http.Handler) http.Handler   = (*guard.Guard)(nil).Edge
	_ []func(http.Handler) http.Handler = httpapi.Config{}.Flow
	_                                   = httpapi.Config{
		Edge: (*guard.Guard)(nil).Edge,
		Flow: []func(http.Handler) http.Handler{
			(*guard.Guard)(nil).PersonLimit(httpapi.IdentityFrom),
			(*guard.Sessions)(nil).Middleware(httpapi.IdentityFrom),
		},
	}
)
