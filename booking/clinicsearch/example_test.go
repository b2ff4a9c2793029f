package clinicsearch_test

import (
	"fmt"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/clinicsearch"
)

// A handler for GET /v1/clinics?near=… builds the index when clinics change
// and asks it per request, with a filter for "has a dose for this caller's
// wave" and the cursor from the previous page.
func ExampleIndex_Near() {
	idx := clinicsearch.New(clinicsearch.Config{})
	err := idx.Build([]booking.Clinic{
		{ID: "C1", Name: "City Hall clinic", Lat: 37.5663, Lon: 126.9779},
		{ID: "C2", Name: "Gwanghwamun clinic", Lat: 37.5759, Lon: 126.9769},
		{ID: "C3", Name: "Seoul Station clinic", Lat: 37.5547, Lon: 126.9707},
		{ID: "C4", Name: "Incheon clinic", Lat: 37.4563, Lon: 126.7052},
	})
	if err != nil {
		panic(err)
	}
	soldOut := map[string]bool{"C2": true}
	q := clinicsearch.Query{
		Lat: 37.5665, Lon: 126.9780, RadiusKm: 5, Limit: 1,
		Filter: func(id string) bool { return !soldOut[id] },
	}
	for {
		page, err := idx.Near(q)
		if err != nil {
			panic(err)
		}
		for _, h := range page.Results {
			fmt.Printf("%s %s %.2f km\n", h.Clinic.ID, h.Clinic.Name, h.DistanceKm)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	// Output:
	// C1 City Hall clinic 0.02 km
	// C3 Seoul Station clinic 1.46 km
}
