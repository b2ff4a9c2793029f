package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/yeyak/yeyak/booking"
)

// SupplyLoader applies supply files; *booking.SupplyLoader has it.
type SupplyLoader interface {
	Load(ctx context.Context, campaignID string, format booking.SupplyFormat, data []byte) (booking.SupplyResult, error)
}

// MaxSupplyBytes bounds a supply file posted to the ops listener (64 MiB:
// 14,000 clinics × 30 dates × 2 products × 2 doses is about 40 MiB of CSV).
const MaxSupplyBytes = 64 << 20

// SupplyOpsHandler serves POST /ops/supply?campaign=ID on the ops listener:
// the body is a supply file (Content-Type text/csv or application/json),
// applied in one transaction, once per file digest. It needs
// "Authorization: Bearer <token>" (compared in constant time); with no
// token configured it answers 403 to everyone.
//
// Answers: 200 {"campaign_id","digest","already_applied","applied_at",
// "rows","quota_rows","doses"}; 400 invalid_request with "rows":[{"line",
// "reason"}] for bad rows (nothing applied); 404 for an unknown campaign;
// 409 conflict with "conflicts":[…], "affected_bookings" and "excess" when
// the file would reduce supply below what is booked (nothing applied);
// 413, 415; 401/403 without the token.
func SupplyOpsHandler(l SupplyLoader, token string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeCode(w, CodeMethodNotAllowed, "POST a supply file.")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case token == "":
			writeJSON(w, http.StatusForbidden, errorBody{errorObject{Code: "forbidden", Message: "No ops token is configured: supply cannot be loaded over HTTP (use yeyakd supply load)."}})
			return
		case !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1:
			w.Header().Set("WWW-Authenticate", `Bearer realm="yeyak-ops"`)
			writeCode(w, CodeUnauthenticated, "The ops token is required.")
			return
		}
		var format booking.SupplyFormat
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch mt {
		case "text/csv":
			format = booking.SupplyCSV
		case "application/json":
			format = booking.SupplyJSON
		default:
			writeCode(w, CodeUnsupportedMediaType, "Content-Type must be text/csv or application/json.")
			return
		}
		campaign := r.URL.Query().Get("campaign")
		if err := checkID("campaign", campaign); err != nil {
			s := &Server{log: log}
			s.fail(w, r, "", err)
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSupplyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeCode(w, CodeBodyTooLarge, "The supply file is larger than 64 MiB.")
				return
			}
			writeCode(w, booking.EINVALID, "The body could not be read.")
			return
		}
		res, err := l.Load(r.Context(), campaign, format, data)
		var bad *booking.SupplyError
		var short *booking.SupplyConflictError
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, supplyResultJSON{
				CampaignID: res.CampaignID, Digest: res.Digest, AlreadyApplied: res.AlreadyApplied,
				AppliedAt: res.AppliedAt.UTC().Format("2006-01-02T15:04:05Z07:00"), Rows: res.Rows, QuotaRows: res.QuotaRows, Doses: res.Doses,
			})
		case errors.As(err, &bad):
			out := supplyErrorJSON{Error: errorObject{Code: booking.EINVALID, Message: bad.Error()}}
			for _, row := range bad.Rows {
				out.Rows = append(out.Rows, supplyRowJSON{Line: row.Line, Reason: row.Reason})
			}
			writeJSON(w, http.StatusBadRequest, out)
		case errors.As(err, &short):
			writeJSON(w, http.StatusConflict, supplyConflictJSON{
				Error:     errorObject{Code: booking.ECONFLICT, Message: short.Error()},
				Conflicts: short.Conflicts, AffectedBookings: short.AffectedBookings, Excess: short.Excess,
			})
		default:
			(&Server{log: log}).fail(w, r, "", err)
		}
	})
}

type supplyResultJSON struct {
	CampaignID     string `json:"campaign_id"`
	Digest         string `json:"digest"`
	AlreadyApplied bool   `json:"already_applied"`
	AppliedAt      string `json:"applied_at"`
	Rows           int    `json:"rows"`
	QuotaRows      int    `json:"quota_rows"`
	Doses          int64  `json:"doses"`
}

type supplyRowJSON struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

type supplyErrorJSON struct {
	Error errorObject     `json:"error"`
	Rows  []supplyRowJSON `json:"rows"`
}

type supplyConflictJSON struct {
	Error            errorObject              `json:"error"`
	Conflicts        []booking.SupplyConflict `json:"conflicts"`
	AffectedBookings int                      `json:"affected_bookings"`
	Excess           int                      `json:"excess"`
}
