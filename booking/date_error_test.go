package booking_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/yeyak/yeyak/booking"
)

func TestDate(t *testing.T) {
	if _, err := booking.ParseDate("2021-02-30"); booking.ErrorCode(err) != booking.EINVALID {
		t.Errorf("ParseDate(2021-02-30) = %v, want %s", err, booking.EINVALID)
	}
	if got := d("2021-03-01").Sub(d("2021-02-27")); got != 2 {
		t.Errorf("Sub = %d, want 2", got)
	}
	if got := d("2024-03-01").AddDays(-1); got != d("2024-02-29") {
		t.Errorf("AddDays = %s", got)
	}
	var v struct{ D booking.Date }
	if err := json.Unmarshal([]byte(`{"D":"2021-08-09"}`), &v); err != nil || v.D != d("2021-08-09") {
		t.Errorf("unmarshal = %v, %v", v.D, err)
	}
	if err := json.Unmarshal([]byte(`{"D":"09/08/2021"}`), &v); err == nil {
		t.Error("unmarshal accepted a non-ISO date")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustDate did not panic")
		}
	}()
	booking.MustDate("nope")
}

func TestErrorCodes(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	err := fmt.Errorf("book: %w", &booking.Error{Code: booking.EREGISTRYDOWN, Message: "The registry is unavailable.", Err: cause})
	if booking.ErrorCode(err) != booking.EREGISTRYDOWN || booking.ErrorMessage(err) != "The registry is unavailable." {
		t.Errorf("code %q message %q", booking.ErrorCode(err), booking.ErrorMessage(err))
	}
	if !errors.Is(err, &booking.Error{Code: booking.EREGISTRYDOWN}) || errors.Is(err, &booking.Error{Code: booking.ESOLDOUT}) {
		t.Error("errors.Is does not match on code")
	}
	if !errors.Is(err, cause) {
		t.Error("cause not unwrapped")
	}
	plain := errors.New("boom")
	if booking.ErrorCode(plain) != booking.EINTERNAL || booking.ErrorMessage(plain) != "Internal error." {
		t.Error("a plain error must read as internal")
	}
	if booking.ErrorCode(nil) != "" || booking.ErrorMessage(nil) != "" {
		t.Error("nil error has a code")
	}
}

// BenchmarkCanBook measures the rule on the hot path (2021 campaign, a
// person inside their rotation window).
func BenchmarkCanBook(b *testing.B) {
	c := booking.Campaign2021()
	now := time.Date(2021, 8, 9, 21, 0, 0, 0, c.Location())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !booking.CanBook(c, older9, now).OK {
				b.Fatal("not OK")
			}
		}
	})
}
