package adapter

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// OpsHandler serves the breakers' ops surface, meant for the ops listener
// (127.0.0.1:9090 by default), never the public one:
//
//	GET  /ops/breakers                          JSON list of BreakerStatus
//	POST /ops/breakers/{name}/force-open        maintenance: fail fast
//	POST /ops/breakers/{name}/force-closed      disable the breaker
//	POST /ops/breakers/{name}/reset             clear overrides, restart closed
//
// POSTs need "Authorization: Bearer <opsToken>" (compared in constant
// time). With opsToken "" the surface is read-only: POSTs answer 403.
// Errors are JSON: {"error":{"code","message","retryable"}}. The handler
// matches the full paths above: mount it without StripPrefix, e.g.
// mux.Handle("/ops/breakers", h) and mux.Handle("/ops/breakers/", h).
func (f *Facade) OpsHandler(opsToken string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ops/breakers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"breakers": f.Breakers()})
	})
	mux.HandleFunc("POST /ops/breakers/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		if opsToken == "" {
			writeError(w, http.StatusForbidden, "ops_read_only", "no ops token is configured: the ops surface is read-only", false)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(opsToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="yeyak-ops"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid ops bearer token is required", false)
			return
		}
		name := r.PathValue("name")
		var err error
		switch r.PathValue("action") {
		case "force-open":
			err = f.ForceOpen(r.Context(), name)
		case "force-closed":
			err = f.ForceClosed(r.Context(), name)
		case "reset":
			err = f.Reset(r.Context(), name)
		default:
			writeError(w, http.StatusNotFound, "not_found", "unknown action; use force-open, force-closed or reset", false)
			return
		}
		switch {
		case errors.Is(err, ErrUnknownBreaker):
			writeError(w, http.StatusNotFound, "not_found", "unknown breaker; use read or write", false)
			return
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, "ops_failed", "the action could not be applied (shared state unavailable?)", true)
			return
		}
		for _, s := range f.Breakers() {
			if s.Name == name {
				writeJSON(w, http.StatusOK, s)
				return
			}
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string, retryable bool) {
	type body struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Retryable bool   `json:"retryable"`
	}
	writeJSON(w, status, map[string]body{"error": {code, msg, retryable}})
}
