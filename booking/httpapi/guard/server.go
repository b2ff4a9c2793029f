package guard

import (
	"net/http"
	"time"
)

// Defaults of ServerLimits' zero values.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 16 << 10
)

// ServerLimits are the connection-level limits of an http.Server that make
// it slowloris-safe: a client dribbling its headers or body, or holding an
// idle connection, is cut off. Zero values mean the defaults above.
type ServerLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers. 0 means 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. 0 means 15s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the
	// end of the response. 0 means 30s.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request. 0 means 2 minutes.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block (larger: 431). 0
	// means 16 KiB.
	MaxHeaderBytes int
}

// ServerTimeouts applies l (with its defaults) to srv and returns srv:
//
//	srv := guard.ServerTimeouts(&http.Server{Addr: addr, Handler: h}, guard.ServerLimits{})
//
// Request bodies are bounded by the API itself (httpapi's MaxBodyBytes).
func ServerTimeouts(srv *http.Server, l ServerLimits) *http.Server {
	srv.ReadHeaderTimeout = orDefault(l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	srv.ReadTimeout = orDefault(l.ReadTimeout, DefaultReadTimeout)
	srv.WriteTimeout = orDefault(l.WriteTimeout, DefaultWriteTimeout)
	srv.IdleTimeout = orDefault(l.IdleTimeout, DefaultIdleTimeout)
	srv.MaxHeaderBytes = l.MaxHeaderBytes
	if srv.MaxHeaderBytes <= 0 {
		srv.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return srv
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
