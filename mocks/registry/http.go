package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/yeyak/yeyak/adapter"
)

// MaxBatch is the most ids POST /api/v1/persons:batch takes.
const MaxBatch = 1000

// legacyDate is the registry's CHAR(8) date form.
const legacyDate = "20060102"

type doseJSON struct {
	DoseNo int    `json:"doseNo"`
	PrdtCd string `json:"prdtCd"`
	VaccDt string `json:"vaccDt"`
}

type rsvJSON struct {
	RsvtID string `json:"rsvtId"`
	PrsnID string `json:"prsnId"`
	CmpnID string `json:"cmpnId"`
	OrgID  string `json:"orgId"`
	RsvtDt string `json:"rsvtDt"`
	PrdtCd string `json:"prdtCd"`
	DoseNo int    `json:"doseNo"`
}

type personJSON struct {
	PrsnID       string     `json:"prsnId"`
	BrthDt       string     `json:"brthDt"`
	CntraYn      string     `json:"cntraYn"`
	ExclYn       string     `json:"exclYn"`
	Doses        []doseJSON `json:"doses"`
	Reservations []rsvJSON  `json:"reservations"`
}

type resultJSON struct {
	ResultCode string `json:"resultCode"`
	ResultMsg  string `json:"resultMsg"`
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

func toJSON(rec adapter.Record) personJSON {
	p := personJSON{
		PrsnID: rec.PersonID, BrthDt: rec.BirthDate.Format(legacyDate),
		CntraYn: yn(rec.Contraindicated), ExclYn: yn(rec.Excluded),
		Doses: []doseJSON{}, Reservations: []rsvJSON{},
	}
	for _, d := range rec.Doses {
		p.Doses = append(p.Doses, doseJSON{DoseNo: d.Number, PrdtCd: d.Product, VaccDt: d.Date.Format(legacyDate)})
	}
	for _, b := range rec.Bookings {
		p.Reservations = append(p.Reservations, rsvToJSON(b))
	}
	return p
}

func rsvToJSON(b adapter.BookingRecord) rsvJSON {
	return rsvJSON{RsvtID: b.BookingID, PrsnID: b.PersonID, CmpnID: b.CampaignID, OrgID: b.ClinicID,
		RsvtDt: b.Date.Format(legacyDate), PrdtCd: b.Product, DoseNo: b.Dose}
}

// Handler serves the registry's HTTP gateway API (docs/legacy-gateway.md)
// under /api/v1 with the faults in force, and the control endpoints under
// /mock (never faulted): GET/PUT /mock/faults, GET /mock/stats, POST
// /mock/reset, GET /mock/reservations/{rsvtId}.
//
// Under Outage a bare Handler drops every gateway connection without an
// answer; only a Server (Start) can refuse connections outright.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/persons/{prsnId}", r.handlePerson)
	api.HandleFunc("POST /api/v1/persons:batch", r.handleBatch)
	api.HandleFunc("PUT /api/v1/reservations/{rsvtId}", r.handleRecord)
	api.HandleFunc("DELETE /api/v1/reservations/{rsvtId}", r.handleCancel)
	api.HandleFunc("GET /api/v1/ping", r.handlePing)
	api.HandleFunc("/api/v1/", func(w http.ResponseWriter, _ *http.Request) {
		writeResult(w, http.StatusNotFound, "E404", "no such endpoint")
	})
	mux.Handle("/api/v1/", r.faulted(api))
	mux.Handle("/mock/", r.ControlHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeResult(w, http.StatusNotFound, "E404", "no such endpoint")
	})
	return mux
}

// ControlHandler serves only the /mock control endpoints; Server runs it on
// a listener of its own that stays up during an Outage.
func (r *Registry) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mock/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.Faults())
	})
	mux.HandleFunc("PUT /mock/faults", func(w http.ResponseWriter, req *http.Request) {
		var f Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeResult(w, http.StatusBadRequest, "E400", "faults: "+err.Error())
			return
		}
		if err := f.validate(); err != nil {
			writeResult(w, http.StatusBadRequest, "E400", "faults: "+err.Error())
			return
		}
		if !f.Outage {
			_ = r.SetFaults(f) // validated above
			writeJSON(w, http.StatusOK, f)
			return
		}
		// Answer first: an Outage set through the gateway listener closes
		// the very connection this request came on.
		writeJSON(w, http.StatusOK, f)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		_ = r.SetFaults(f)
	})
	mux.HandleFunc("GET /mock/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.Stats())
	})
	mux.HandleFunc("POST /mock/reset", func(w http.ResponseWriter, _ *http.Request) {
		r.Reset()
		writeResult(w, http.StatusOK, "0000", "reset")
	})
	mux.HandleFunc("GET /mock/reservations/{rsvtId}", func(w http.ResponseWriter, req *http.Request) {
		id := req.PathValue("rsvtId")
		records, cancels := r.WritesFor(id)
		v, ok := r.Reservation(id)
		if !ok && records == 0 && cancels == 0 {
			writeResult(w, http.StatusNotFound, "E404", "reservation not found")
			return
		}
		out := struct {
			Reservation *rsvJSON `json:"reservation"`
			SttsCd      string   `json:"sttsCd,omitempty"`
			Records     int      `json:"records"`
			Cancels     int      `json:"cancels"`
		}{Records: records, Cancels: cancels}
		if ok {
			j := rsvToJSON(v.BookingRecord)
			out.Reservation, out.SttsCd = &j, v.Status
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeResult(w, http.StatusNotFound, "E404", "no such endpoint")
	})
	return mux
}

// faulted runs the faults in force before each gateway call.
func (r *Registry) faulted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		write := req.Method == http.MethodPut || req.Method == http.MethodDelete
		done, err := r.enter(req.Context(), write)
		if err != nil {
			var fe *FaultError
			if !errors.As(err, &fe) {
				writeResult(w, http.StatusInternalServerError, "E500", "internal error")
				return
			}
			if fe.Kind == FaultOutage {
				drop(w)
				return
			}
			if fe.Ctx != nil { // the caller went away while stalled or delayed
				return
			}
			writeFault(w, fe)
			return
		}
		defer done()
		next.ServeHTTP(w, req)
	})
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func writeFault(w http.ResponseWriter, fe *FaultError) {
	if fe.RetryAfter > 0 {
		secs := max(1, int((fe.RetryAfter+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeResult(w, fe.Status, fmt.Sprintf("E%d", fe.Status), "injected "+fe.Kind)
}

func (r *Registry) handlePerson(w http.ResponseWriter, req *http.Request) {
	rec, ok := r.eligibility(req.PathValue("prsnId"))
	if !ok {
		writeResult(w, http.StatusNotFound, "E404", "person not found")
		return
	}
	writeJSON(w, http.StatusOK, toJSON(rec))
}

func (r *Registry) handleBatch(w http.ResponseWriter, req *http.Request) {
	var body struct {
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&body); err != nil {
		writeResult(w, http.StatusBadRequest, "E400", "malformed body: want {\"ids\":[...]}")
		return
	}
	if body.IDs == nil {
		writeResult(w, http.StatusBadRequest, "E400", "ids missing")
		return
	}
	if len(body.IDs) > MaxBatch {
		writeResult(w, http.StatusBadRequest, "E400", fmt.Sprintf("at most %d ids per batch", MaxBatch))
		return
	}
	recs := r.eligibilityBulk(body.IDs)
	out := struct {
		Persons []personJSON `json:"persons"`
	}{Persons: make([]personJSON, 0, len(recs))}
	for _, rec := range recs {
		out.Persons = append(out.Persons, toJSON(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) handleRecord(w http.ResponseWriter, req *http.Request) {
	var body struct {
		PrsnID *string `json:"prsnId"`
		CmpnID *string `json:"cmpnId"`
		OrgID  *string `json:"orgId"`
		RsvtDt *string `json:"rsvtDt"`
		PrdtCd *string `json:"prdtCd"`
		DoseNo *int    `json:"doseNo"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16)).Decode(&body); err != nil {
		writeResult(w, http.StatusBadRequest, "E400", "malformed body")
		return
	}
	if body.PrsnID == nil || body.CmpnID == nil || body.OrgID == nil || body.RsvtDt == nil || body.PrdtCd == nil || body.DoseNo == nil {
		writeResult(w, http.StatusBadRequest, "E400", "prsnId, cmpnId, orgId, rsvtDt, prdtCd and doseNo are required")
		return
	}
	date, err := time.Parse(legacyDate, *body.RsvtDt)
	if err != nil || len(*body.RsvtDt) != 8 {
		writeResult(w, http.StatusBadRequest, "E400", "rsvtDt must be YYYYMMDD")
		return
	}
	b := adapter.BookingRecord{
		BookingID: req.PathValue("rsvtId"), PersonID: *body.PrsnID, CampaignID: *body.CmpnID,
		ClinicID: *body.OrgID, Date: date, Product: *body.PrdtCd, Dose: *body.DoseNo,
	}
	created, err := r.recordBooking(b)
	switch {
	case errors.Is(err, errMalformed):
		writeResult(w, http.StatusBadRequest, "E400", strings.TrimPrefix(err.Error(), errMalformed.Error()+": "))
		return
	case err != nil:
		writeResult(w, http.StatusUnprocessableEntity, "E422", businessMessage(err))
		return
	}
	if err := r.afterWrite(); err != nil {
		var fe *FaultError
		errors.As(err, &fe)
		writeFault(w, fe)
		return
	}
	if created {
		writeResult(w, http.StatusCreated, "0000", "created")
		return
	}
	writeResult(w, http.StatusOK, "0000", "already recorded")
}

// businessMessage is the rejection reason without the package prefixes.
func businessMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "mock registry: ")
	return strings.TrimSuffix(msg, ": "+adapter.ErrRejected.Error())
}

func (r *Registry) handleCancel(w http.ResponseWriter, req *http.Request) {
	r.cancelBooking(req.PathValue("rsvtId"))
	if err := r.afterWrite(); err != nil {
		var fe *FaultError
		errors.As(err, &fe)
		writeFault(w, fe)
		return
	}
	writeResult(w, http.StatusOK, "0000", "cancelled")
}

func (r *Registry) handlePing(w http.ResponseWriter, _ *http.Request) {
	r.stats.pings.Add(1)
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeResult(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, resultJSON{ResultCode: code, ResultMsg: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resultCode":"E500","resultMsg":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
