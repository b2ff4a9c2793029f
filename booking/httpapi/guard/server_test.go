package guard_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking/httpapi/guard"
)

func TestServerTimeoutsDefaults(t *testing.T) {
	srv := guard.ServerTimeouts(&http.Server{Addr: "127.0.0.1:0"}, guard.ServerLimits{})
	if srv.ReadHeaderTimeout != guard.DefaultReadHeaderTimeout || srv.ReadTimeout != guard.DefaultReadTimeout ||
		srv.WriteTimeout != guard.DefaultWriteTimeout || srv.IdleTimeout != guard.DefaultIdleTimeout ||
		srv.MaxHeaderBytes != guard.DefaultMaxHeaderBytes || srv.Addr != "127.0.0.1:0" {
		t.Fatalf("defaults not applied: %+v", srv)
	}
	l := guard.ServerLimits{ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4, MaxHeaderBytes: 5}
	srv = guard.ServerTimeouts(&http.Server{}, l)
	if srv.ReadHeaderTimeout != 1 || srv.ReadTimeout != 2 || srv.WriteTimeout != 3 || srv.IdleTimeout != 4 || srv.MaxHeaderBytes != 5 {
		t.Fatalf("limits not applied: %+v", srv)
	}
}

// serveLimited starts an http.Server configured by ServerTimeouts on a
// loopback port; the handler counts its calls.
func serveLimited(t *testing.T, l guard.ServerLimits, h http.HandlerFunc) (addr string, calls *atomic.Int32) {
	t.Helper()
	calls = new(atomic.Int32)
	srv := guard.ServerTimeouts(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h(w, r)
	})}, l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String(), calls
}

// closedByServer returns a channel closed once the server ends the
// connection (the read side sees EOF or a reset); it drains what the
// server writes into got.
func closedByServer(conn net.Conn, got *strings.Builder) <-chan struct{} {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return closed
}

// dribble writes data one byte per second until the server closes the
// connection or the generous deadline passes. It returns the bytes sent.
func dribble(t *testing.T, conn net.Conn, closed <-chan struct{}, data string) int {
	t.Helper()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	sent := 0
	for {
		select {
		case <-closed:
			return sent
		case <-deadline:
			t.Fatalf("server still reading a dribbling client after 30s (%d bytes sent)", sent)
		case <-tick.C:
			if _, err := conn.Write([]byte{data[sent%len(data)]}); err != nil {
				select {
				case <-closed:
				case <-time.After(30 * time.Second):
					t.Fatal("write failed but the connection is not closed")
				}
				return sent
			}
			sent++
		}
	}
}

// TestSlowHeadersCutOff: a client dribbling its headers one byte per
// second (slowloris) is cut off by ReadHeaderTimeout; the handler never runs.
func TestSlowHeadersCutOff(t *testing.T) {
	t.Parallel()
	addr, calls := serveLimited(t, guard.ServerLimits{ReadHeaderTimeout: 2 * time.Second}, func(http.ResponseWriter, *http.Request) {})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/campaigns HTTP/1.1\r\nHost: yeyak\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	closed := closedByServer(conn, &got)
	sent := dribble(t, conn, closed, "abcdefghij")
	if calls.Load() != 0 {
		t.Fatal("the handler ran for an incomplete request")
	}
	t.Logf("cut off after %d dribbled bytes; server wrote %q", sent, got.String())
}

// TestSlowBodyCutOff: complete headers, then a body dribbled one byte per
// second: ReadTimeout ends the read, the handler sees an error.
func TestSlowBodyCutOff(t *testing.T) {
	t.Parallel()
	var readErr atomic.Value
	addr, calls := serveLimited(t, guard.ServerLimits{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second},
		func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				readErr.Store(err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/bookings HTTP/1.1\r\nHost: yeyak\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	closed := closedByServer(conn, &got)
	dribble(t, conn, closed, `"a":1,`)
	if calls.Load() != 1 {
		t.Fatalf("handler calls = %d, want 1", calls.Load())
	}
	if err, _ := readErr.Load().(error); err == nil {
		t.Fatal("the handler read a dribbled body without error")
	}
}

// TestIdleConnectionClosed: a keep-alive connection left idle is closed
// after IdleTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	addr, _ := serveLimited(t, guard.ServerLimits{IdleTimeout: time.Second}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: yeyak\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Close {
		t.Fatalf("response %d close=%v, want a kept-alive 204", resp.StatusCode, resp.Close)
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("idle connection still open after 30s")
	}
	if err == nil {
		t.Fatal("server sent bytes on an idle connection")
	}
}

// TestOversizedHeadersRefused: headers beyond MaxHeaderBytes get 431.
func TestOversizedHeadersRefused(t *testing.T) {
	t.Parallel()
	addr, calls := serveLimited(t, guard.ServerLimits{MaxHeaderBytes: 1 << 10}, func(http.ResponseWriter, *http.Request) {})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// net/http allows 4 KiB of slack over MaxHeaderBytes; 64 KiB is far beyond.
	go func() {
		_, _ = fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: yeyak\r\nX-Big: %s\r\n\r\n", strings.Repeat("x", 64<<10))
	}()
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || calls.Load() != 0 {
		t.Fatalf("status %d, handler calls %d; want 431 and none", resp.StatusCode, calls.Load())
	}
}
