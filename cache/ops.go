package cache

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// OpsHandler serves the cache's ops surface, for the ops listener:
//
//	GET  /ops/cache                          Stats as JSON
//	POST /ops/cache/invalidate/{personID}    Invalidate one person
//	GET  /ops/warmer                         WarmerStatus as JSON
//	POST /ops/warmer/start?digit=D           Start (or resume) warming digit D
//	POST /ops/warmer/pause                   Pause the warmer
//
// POST endpoints require "Authorization: Bearer <opsToken>" (compared in
// constant time); with an empty opsToken they answer 403 and the surface is
// read-only. Errors are JSON: {"error":{"code","message"}}. Warmer endpoints
// answer 404 when the cache has no warmer (NewWarmer was not called).
func (c *Cache) OpsHandler(opsToken string) http.Handler {
	mux := http.NewServeMux()
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if opsToken == "" {
				writeError(w, http.StatusForbidden, "forbidden", "No ops token is configured: the ops surface is read-only.")
				return
			}
			want := []byte("Bearer " + opsToken)
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
				w.Header().Set("WWW-Authenticate", "Bearer")
				writeError(w, http.StatusUnauthorized, "unauthorized", "A valid ops bearer token is required.")
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /ops/cache", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Stats())
	})
	mux.HandleFunc("POST /ops/cache/invalidate/{personID}", authed(func(w http.ResponseWriter, r *http.Request) {
		c.Invalidate(r.Context(), r.PathValue("personID"))
		writeJSON(w, http.StatusOK, map[string]bool{"invalidated": true})
	}))
	warmer := func(w http.ResponseWriter) *Warmer {
		wm := c.warmer.Load()
		if wm == nil {
			writeError(w, http.StatusNotFound, "not_found", "This cache has no warmer configured.")
		}
		return wm
	}
	mux.HandleFunc("GET /ops/warmer", func(w http.ResponseWriter, r *http.Request) {
		if wm := warmer(w); wm != nil {
			writeJSON(w, http.StatusOK, wm.Status())
		}
	})
	mux.HandleFunc("POST /ops/warmer/start", authed(func(w http.ResponseWriter, r *http.Request) {
		wm := warmer(w)
		if wm == nil {
			return
		}
		d, err := strconv.Atoi(r.URL.Query().Get("digit"))
		if err != nil || d < 0 || d > 9 {
			writeError(w, http.StatusBadRequest, "invalid_request", "digit must be 0-9.")
			return
		}
		if err := wm.Start(r.Context(), d); err != nil {
			status := http.StatusServiceUnavailable
			if errors.Is(err, ErrWarmerBusy) {
				status = http.StatusConflict
			}
			writeError(w, status, "warmer_not_started", err.Error())
			return
		}
		writeJSON(w, http.StatusAccepted, wm.Status())
	}))
	mux.HandleFunc("POST /ops/warmer/pause", authed(func(w http.ResponseWriter, r *http.Request) {
		if wm := warmer(w); wm != nil {
			wm.Pause()
			writeJSON(w, http.StatusOK, wm.Status())
		}
	}))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
