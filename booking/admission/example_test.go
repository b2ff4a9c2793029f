package admission_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/yeyak/yeyak/booking/admission"
)

// Example mounts the waiting room in front of a booking route: while people
// wait, a request without a pass is sent to the queue; once admitted, the
// pass from the queue opens the route.
func Example() {
	now := time.Date(2021, time.August, 9, 21, 0, 0, 0, time.UTC)
	adm, err := admission.New(admission.Config{
		Keys: []admission.Key{{ID: "k1", Secret: []byte("a secret of at least 16 bytes")}},
		// The host knows the verified person from the identity token.
		PersonFunc: func(r *http.Request) (string, bool) {
			p := r.Header.Get("X-Person")
			return p, p != ""
		},
		Floor: 1, Ceiling: 1, Initial: 1, // one admission per second
		Now: func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	adm.Mount(mux)
	mux.Handle("/v1/bookings", adm.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "booked")
	})))

	do := func(method, path, person, pass string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("X-Person", person)
		if pass != "" {
			r.Header.Set(admission.PassHeader, pass)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}

	for _, p := range []string{"minji", "jun"} {
		s, _ := adm.Join(context.Background(), p)
		fmt.Printf("%s joins: %s at %d, wait %d s\n", p, s.State, s.Position, s.EstimatedWaitSeconds)
	}
	w := do("POST", "/v1/bookings", "jun", "")
	fmt.Println("jun without a pass:", w.Code, w.Header().Get("Location"))

	now = now.Add(1500 * time.Millisecond)
	s, _ := adm.Join(context.Background(), "minji") // joining again = polling one's place
	fmt.Println("minji polls:", s.State)
	fmt.Println("minji with her pass:", do("POST", "/v1/bookings", "minji", s.Pass).Body.String())
	fmt.Println("jun with minji's pass:", do("POST", "/v1/bookings", "jun", s.Pass).Code)
	// Output:
	// minji joins: waiting at 1, wait 1 s
	// jun joins: waiting at 2, wait 2 s
	// jun without a pass: 429 /v1/queue
	// minji polls: admitted
	// minji with her pass: booked
	//
	// jun with minji's pass: 429
}
