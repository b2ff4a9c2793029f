package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
)

// visitor is one virtual person going through the flow.
type visitor struct {
	r      *runner
	client *http.Client // the person's connections, from their source address
	queue  *http.Client // their connections for the waiting room
	p      population.Person
	class  int
	rng    *rand.Rand
	token  string
	pass   string // waiting-room pass, sent on booking-flow calls
	status string // the outcome if the flow ended now

	admitted bool        // a booking-flow call answered 2xx
	inLine   bool        // left the waiting room when the line closed (QueueDrain)
	place    queueStatus // the waiting room's last answer
	placeAt  time.Time   // when it came

	choice  choice       // what the last search picked
	booking *bookingJSON // the person's booking, once made
	ack     string       // how the booking became known
}

// stage is one step of the flow. It returns the outcome that ends the
// person's flow, or "" to go on to the next stage.
type stage struct {
	name string
	run  func(v *visitor, ctx context.Context) string
}

// stages is the flow every person walks, cut after Config.StopAfter. A
// new step (say, joining the waiting room up front) is one more stage;
// steps that react to an answer (429 queue_required) live in call.
func (r *runner) stages() []stage {
	all := []stage{{StepToken, (*visitor).getToken}}
	if !r.cfg.SkipEligibility {
		all = append(all, stage{StepEligibility, (*visitor).checkEligibility})
	}
	all = append(all, stage{StepSearch, (*visitor).searchStage}, stage{StepBook, (*visitor).bookStage},
		stage{"change", (*visitor).changeStage})
	if r.cfg.StopAfter != "" {
		for i, s := range all {
			if s.name == r.cfg.StopAfter {
				return all[:i+1]
			}
		}
	}
	return all
}

// run walks the stages and records how the flow ended.
func (v *visitor) run(ctx context.Context) {
	outcome := ""
	for i, s := range v.r.flow {
		if i > 0 {
			v.think(ctx)
		}
		if outcome = s.run(v, ctx); outcome != "" {
			break
		}
	}
	if outcome == "" {
		outcome = v.status
	}
	switch {
	case ctx.Err() != nil:
		outcome = "abandoned"
	case v.inLine:
		outcome = OutcomeInLine
		v.r.rec.leftLine(v.place, time.Since(v.placeAt))
	}
	v.r.rec.outcome(outcome)
}

func (v *visitor) think(ctx context.Context) {
	if t := v.r.cfg.Think; t > 0 {
		sleep(ctx, time.Duration(v.rng.Int64N(int64(t)+1)))
	}
}

func (v *visitor) fail(step string, a answer) string {
	code := a.code
	if code == "" {
		code = fmt.Sprintf("http_%d", a.status)
	}
	return "failed:" + step + ":" + code
}

func (v *visitor) refuse(code string) string {
	v.r.rec.refusal(code)
	return "refused:" + code
}

func (v *visitor) getToken(ctx context.Context) string {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	a := v.call(ctx, request{step: StepToken, method: http.MethodPost, path: "/demo/token",
		body: map[string]string{"person_id": v.p.ID}}, &out)
	if !a.ok() || out.AccessToken == "" {
		return v.fail(StepToken, a)
	}
	v.token = out.AccessToken
	return ""
}

func (v *visitor) checkEligibility(ctx context.Context) string {
	var out struct {
		Eligible bool   `json:"eligible"`
		Reason   string `json:"reason"`
	}
	a := v.call(ctx, request{step: StepEligibility, method: http.MethodGet, auth: true, flow: true,
		path: "/v1/me/eligibility?campaign=" + url.QueryEscape(v.r.camp.ID)}, &out)
	switch {
	case a.ok():
	case expectedCodes[a.code]:
		return v.refuse(a.code)
	default:
		return v.fail(StepEligibility, a)
	}
	v.status = "checked"
	if !out.Eligible && v.class == classToday {
		// A frontend shows "not now" and stops. People of other digits
		// try to book anyway, and must be refused.
		return v.refuse(out.Reason)
	}
	return ""
}

// choice is a place to book: clinic, date, product.
type choice struct {
	ClinicID string
	Date     booking.Date
	Product  string
}

type clinicsJSON struct {
	Clinics []struct {
		ID           string `json:"id"`
		Availability []struct {
			Date      booking.Date `json:"date"`
			Product   string       `json:"product"`
			Remaining int          `json:"remaining"`
		} `json:"availability"`
	} `json:"clinics"`
}

// search looks for a place with doses left for product ("" = any): up to
// three searches on random vaccination dates. Half the people take the
// first clinic listed (everyone wants the same nearby clinic), the others
// one at random. found is false with an ok answer when nothing was left.
func (v *visitor) search(ctx context.Context, product string, avoid choice) (c choice, a answer, found bool) {
	camp := v.r.camp
	days := camp.Vaccination.To.Sub(camp.Vaccination.From) + 1
	for range 3 {
		p := product
		if p == "" && len(camp.Products) > 0 {
			p = camp.Products[v.rng.IntN(len(camp.Products))].ID
		}
		d := camp.Vaccination.From.AddDays(v.rng.IntN(max(days, 1)))
		q := url.Values{"campaign": {camp.ID}, "date": {d.String()}, "product": {p}, "limit": {"20"}}
		var out clinicsJSON
		a = v.call(ctx, request{step: StepSearch, method: http.MethodGet, path: "/v1/clinics?" + q.Encode(), auth: true, flow: true}, &out)
		if !a.ok() {
			return choice{}, a, false
		}
		var cands []choice
		for _, cl := range out.Clinics {
			for _, av := range cl.Availability {
				if av.Remaining > 0 && av.Date == d && av.Product == p {
					if c := (choice{cl.ID, d, p}); c != avoid {
						cands = append(cands, c)
					}
				}
			}
		}
		if len(cands) == 0 {
			continue
		}
		if v.rng.IntN(2) == 0 {
			return cands[0], a, true
		}
		return cands[v.rng.IntN(len(cands))], a, true
	}
	return choice{}, a, false
}

func (v *visitor) searchStage(ctx context.Context) string {
	c, a, found := v.search(ctx, "", choice{})
	switch {
	case !a.ok():
		return v.fail(StepSearch, a)
	case !found:
		v.r.rec.refusal(codeSoldOut)
		return codeSoldOut
	}
	v.choice = c
	v.status = "searched"
	return ""
}

type bookingJSON struct {
	ID         string       `json:"id"`
	CampaignID string       `json:"campaign_id"`
	ClinicID   string       `json:"clinic_id"`
	Date       booking.Date `json:"date"`
	Product    string       `json:"product"`
	Status     string       `json:"status"`
}

type bookingBody struct {
	CampaignID string       `json:"campaign_id"`
	ClinicID   string       `json:"clinic_id"`
	Date       booking.Date `json:"date"`
	Product    string       `json:"product"`
}

// bookStage books the chosen place with an Idempotency-Key kept across
// retries. Sold out: search again and try another place (a new attempt, a
// new key), three places at most. An attempt that ends without a clear
// answer (no answer, 5xx, still in progress after every retry) is settled
// the way a frontend would: by listing the person's bookings.
func (v *visitor) bookStage(ctx context.Context) string {
	for pick := range 3 {
		if pick > 0 {
			c, a, found := v.search(ctx, "", choice{})
			if !a.ok() {
				return v.fail(StepSearch, a)
			}
			if !found {
				break
			}
			v.choice = c
		}
		key := fmt.Sprintf("%s-%s-%d", v.r.runID, v.p.ID, pick)
		var out struct {
			Booking bookingJSON `json:"booking"`
		}
		a := v.call(ctx, request{step: StepBook, method: http.MethodPost, path: "/v1/bookings", key: key, auth: true, flow: true,
			body: bookingBody{v.r.camp.ID, v.choice.ClinicID, v.choice.Date, v.choice.Product}}, &out)
		switch {
		case a.ok():
			v.ack = "created"
			if a.header.Get("Idempotent-Replayed") == "true" {
				v.ack = "replayed"
			}
			v.setBooking(&out.Booking, v.ack, "", false)
			v.status = "booked"
			return ""
		case a.code == codeSoldOut:
			continue
		case a.code == codeAlreadyBooked && pick > 0, a.ambiguous(), a.code == codeInProgress:
			// An earlier attempt may have booked without the person
			// learning it.
			if b := v.reconcile(ctx); b != nil {
				v.setBooking(b, "listed", "", false)
				v.status = "booked"
				return ""
			}
			if a.code == codeAlreadyBooked {
				return v.refuse(a.code)
			}
			return v.fail(StepBook, a)
		case expectedCodes[a.code]:
			return v.refuse(a.code)
		default:
			return v.fail(StepBook, a)
		}
	}
	v.r.rec.refusal(codeSoldOut)
	return codeSoldOut
}

// reconcile lists the person's bookings and returns their active booking
// in the campaign, if any.
func (v *visitor) reconcile(ctx context.Context) *bookingJSON {
	var out struct {
		Bookings []bookingJSON `json:"bookings"`
	}
	a := v.call(ctx, request{step: StepReconcile, method: http.MethodGet, path: "/v1/bookings", auth: true, flow: true}, &out)
	if !a.ok() {
		return nil
	}
	for i := range out.Bookings {
		if b := &out.Bookings[i]; b.CampaignID == v.r.camp.ID && b.Status != "cancelled" {
			return b
		}
	}
	return nil
}

// lookup reads the person's booking by id.
func (v *visitor) lookup(ctx context.Context, id string) *bookingJSON {
	var out struct {
		Booking bookingJSON `json:"booking"`
	}
	a := v.call(ctx, request{step: StepReconcile, method: http.MethodGet, path: "/v1/bookings/" + url.PathEscape(id), auth: true, flow: true}, &out)
	if !a.ok() {
		return nil
	}
	return &out.Booking
}

func (v *visitor) setBooking(b *bookingJSON, ack, change string, uncertain bool) {
	v.booking = b
	v.r.rec.booking(BookingRecord{ID: b.ID, PersonID: v.p.ID, CampaignID: b.CampaignID, ClinicID: b.ClinicID,
		Date: b.Date.String(), Product: b.Product, Status: b.Status, Ack: ack, Change: change, Uncertain: uncertain})
}

// changeStage cancels (CancelShare of the people who booked) or
// reschedules (RescheduleShare of the others).
func (v *visitor) changeStage(ctx context.Context) string {
	if v.booking == nil {
		return ""
	}
	cfg := &v.r.cfg
	switch {
	case cfg.CancelShare > 0 && v.rng.Float64() < cfg.CancelShare:
		return v.cancel(ctx)
	case cfg.RescheduleShare > 0 && v.rng.Float64() < cfg.RescheduleShare:
		return v.reschedule(ctx)
	}
	return ""
}

func (v *visitor) cancel(ctx context.Context) string {
	b := v.booking
	var out struct {
		Booking bookingJSON `json:"booking"`
	}
	a := v.call(ctx, request{step: StepCancel, method: http.MethodDelete, path: "/v1/bookings/" + url.PathEscape(b.ID), auth: true, flow: true}, &out)
	switch {
	case a.ok():
		v.setBooking(&out.Booking, "", "cancelled", false)
		return "cancelled"
	case a.ambiguous() || a.code == codeAlreadyCancel:
		// A retry after a lost answer finds it cancelled already.
		if got := v.lookup(ctx, b.ID); got != nil {
			if got.Status == "cancelled" {
				v.setBooking(got, "", "cancelled", false)
				return "cancelled"
			}
			v.setBooking(got, "", "", false)
			return v.fail(StepCancel, a)
		}
		v.setBooking(b, "", "", true)
		return v.fail(StepCancel, a)
	case expectedCodes[a.code]:
		return v.refuse(a.code)
	}
	return v.fail(StepCancel, a)
}

func (v *visitor) reschedule(ctx context.Context) string {
	b := v.booking
	from := choice{b.ClinicID, b.Date, b.Product}
	c, a, found := v.search(ctx, b.Product, from)
	if !a.ok() {
		return v.fail(StepSearch, a)
	}
	if !found {
		v.r.rec.refusal(codeSoldOut)
		return "booked"
	}
	var out struct {
		Booking bookingJSON `json:"booking"`
	}
	a = v.call(ctx, request{step: StepReschedule, method: http.MethodPost, path: "/v1/bookings/" + url.PathEscape(b.ID) + "/reschedule",
		auth: true, flow: true, body: map[string]any{"clinic_id": c.ClinicID, "date": c.Date}}, &out)
	switch {
	case a.ok():
		v.setBooking(&out.Booking, "", "rescheduled", false)
		return "rescheduled"
	case a.ambiguous():
		if got := v.lookup(ctx, b.ID); got != nil {
			moved := got.ClinicID == c.ClinicID && got.Date == c.Date
			if moved {
				v.setBooking(got, "", "rescheduled", false)
				return "rescheduled"
			}
			v.setBooking(got, "", "", false)
			return v.fail(StepReschedule, a)
		}
		v.setBooking(b, "", "", true) // it may or may not have moved
		return v.fail(StepReschedule, a)
	case expectedCodes[a.code]:
		v.r.rec.refusal(a.code)
		return "booked"
	}
	return v.fail(StepReschedule, a)
}
