package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/yeyak/yeyak/booking/httpapi/auth"
)

type nopVerifier struct{}

func (nopVerifier) Verify(context.Context, string) (auth.Identity, error) {
	return auth.Identity{}, auth.ErrInvalidToken
}

type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{h: http.Header{}} }

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(c int) {
	if r.status == 0 {
		r.status = c
	}
}

func mustRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://yeyak.test"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
