package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// ServerConfig says where a Server listens. The zero value listens on
// 127.0.0.1 ports chosen by the system.
type ServerConfig struct {
	// Addr is the gateway API's address. "" means 127.0.0.1:0.
	Addr string
	// ControlAddr is the address of the control listener, which serves
	// only /mock/* and stays up during an Outage so the outage can be
	// cleared over HTTP. "" means Addr's host on a free port.
	ControlAddr string
}

// Server runs a Registry's HTTP gateway on a listener it owns, so that
// Outage really refuses connections: setting it closes the listener and
// every open connection; clearing it listens again on the same port.
type Server struct {
	reg   *Registry
	addr  string // the gateway's host:port, fixed at Start
	ctrl  *http.Server
	cAddr string

	mu      sync.Mutex
	api     *http.Server // nil while down
	closed  bool
	wg      sync.WaitGroup
	unwatch func()
}

// Start serves the registry's gateway API (and /mock/*) on addr and the
// control endpoints on a second listener; see StartServer.
func (r *Registry) Start(addr string) (*Server, error) {
	return r.StartServer(ServerConfig{Addr: addr})
}

// StartServer serves the registry as configured. Close stops it.
func (r *Registry) StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mock registry: listen %s: %w", cfg.Addr, err)
	}
	if cfg.ControlAddr == "" {
		host, _, _ := net.SplitHostPort(ln.Addr().String())
		cfg.ControlAddr = net.JoinHostPort(host, "0")
	}
	cln, err := net.Listen("tcp", cfg.ControlAddr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("mock registry: listen %s: %w", cfg.ControlAddr, err)
	}
	s := &Server{reg: r, addr: ln.Addr().String(), cAddr: cln.Addr().String()}
	s.ctrl = &http.Server{Handler: r.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
	s.serve(s.ctrl, cln)
	if r.Faults().Outage {
		ln.Close()
	} else {
		s.api = s.newAPI()
		s.serve(s.api, ln)
	}
	s.unwatch = r.watch(s.onFaults)
	return s, nil
}

func (s *Server) newAPI() *http.Server {
	return &http.Server{Handler: s.reg.Handler(), ReadHeaderTimeout: 10 * time.Second}
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.reg.log.Error("mock registry server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// onFaults brings the gateway listener down on Outage and up again after.
func (s *Server) onFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
	case f.Outage && s.api != nil:
		s.api.Close() // closes the listener and every connection
		s.api = nil
		s.reg.log.Info("mock registry gateway down (outage)", "addr", s.addr)
	case !f.Outage && s.api == nil:
		ln, err := listenAgain(s.addr)
		if err != nil {
			s.reg.log.Error("mock registry gateway cannot listen again", "addr", s.addr, "err", err)
			return
		}
		s.api = s.newAPI()
		s.serve(s.api, ln)
		s.reg.log.Info("mock registry gateway up", "addr", s.addr)
	}
}

// listenAgain listens on addr, retrying briefly: the port was ours a moment
// ago and the kernel may still be releasing it.
func listenAgain(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// URL is the gateway's base URL, e.g. "http://127.0.0.1:7070"; the API is
// under URL()+"/api/v1". It stays the same across outages.
func (s *Server) URL() string { return "http://" + s.addr }

// ControlURL is the base URL of the control listener (/mock/*), which
// stays up during an Outage.
func (s *Server) ControlURL() string { return "http://" + s.cAddr }

// Up reports whether the gateway listener is accepting connections.
func (s *Server) Up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api != nil
}

// Close stops both listeners, drops every connection (stalled calls end)
// and waits for the serving goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	api := s.api
	s.api = nil
	s.mu.Unlock()
	s.unwatch()
	var err error
	if api != nil {
		err = api.Close()
	}
	err = errors.Join(err, s.ctrl.Close())
	s.wg.Wait()
	return err
}

// Shutdown stops accepting and waits for calls in progress to finish, up
// to ctx; then it closes whatever is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	api := s.api
	s.mu.Unlock()
	var err error
	if api != nil {
		err = api.Shutdown(ctx)
	}
	err = errors.Join(err, s.ctrl.Shutdown(ctx))
	return errors.Join(err, s.Close())
}
