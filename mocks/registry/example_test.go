package registry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

// A test drives the fake registry in-process: record a booking, deliver it
// again, break the registry, and check what reached it.
func Example() {
	ctx := context.Background()
	cfg := population.Config{Seed: 1, People: 1000}
	reg := registry.New(registry.Config{Population: cfg})

	var p population.Person
	for _, q := range population.PeopleWithDigit(cfg, 7, 50) {
		if q.Eligible() {
			p = q
			break
		}
	}
	b := adapter.BookingRecord{BookingID: "bk-1", PersonID: p.ID, CampaignID: "c2021", ClinicID: "C000001",
		Date: time.Date(2021, 8, 27, 0, 0, 0, 0, time.UTC), Product: "pfizer", Dose: 1}
	fmt.Println(reg.RecordBooking(ctx, b))
	fmt.Println(reg.RecordBooking(ctx, b)) // redelivery: success, nothing changes

	_ = reg.SetFaults(registry.Faults{Outage: true})
	_, err := reg.Eligibility(ctx, p.ID)
	fmt.Println(errors.Is(err, adapter.ErrUnavailable))
	_ = reg.SetFaults(registry.Faults{})

	records, cancels := reg.WritesFor("bk-1")
	res, _ := reg.Reservation("bk-1")
	fmt.Println(records, cancels, res.Status)
	// Output:
	// <nil>
	// <nil>
	// true
	// 2 0 A
}
