// Package clinicsearch finds the clinics near a point: the in-memory geo
// index behind GET /v1/clinics?near=lat,lon&radius_km=R&cursor=…&limit=N.
//
//	idx := clinicsearch.New(clinicsearch.Config{})
//	if err := idx.Build(clinics); err != nil { … }          // on clinic changes
//	page, err := idx.Near(clinicsearch.Query{
//		Lat: 37.5665, Lon: 126.9780, RadiusKm: 5, Limit: 20,
//		Cursor: cursorFromRequest,
//		Filter: func(id string) bool { return remaining(id, wave) > 0 },
//	})
//	// page.Results nearest first; page.NextCursor "" on the last page
//
// Results are ordered by (haversine distance, clinic id) and only include
// clinics for which the caller's Filter says yes, typically "has remaining
// quota for the caller's wave". Availability is a predicate rather than
// data in the index, so quota changes never rebuild anything; Build runs
// only when clinics change and takes a few milliseconds for 14,000.
//
// # Why a uniform grid
//
// Clinics sit in one small, fixed box (Korea: about 33–39°N, 124–132°E) and
// every query is a disc of at most 100 km. A uniform latitude/longitude grid
// of cells a few kilometres wide (DefaultCellKm; east–west width scaled by
// the cosine of the middle latitude so cells are near square) answers a
// radius query in O(cells touched + clinics in them): the exact bounding box
// of the disc picks a rectangle of cells, whose clinics are contiguous per
// grid row in one flat array; the cells are read in square rings around
// the query's cell, a bounded heap keeps the best Limit+1, and the search
// stops at the first ring that cannot beat the heap's worst, so a 100 km
// query in Seoul reads about as much as a 10 km one.
// Building is one counting sort, so a rebuild costs milliseconds and
// allocates three slices. A k-d tree or an R-tree would add balancing and
// pointer chasing for no gain at this size and uniformity of query, and a
// geohash library would still need neighbour expansion and a distance check
// per candidate, with cells that are not square at Korean latitudes.
// Dense cities put more clinics in a cell, but a query there also wants
// more of them.
//
// # Paging
//
// A cursor is opaque base64url: the last (distance, id) returned and the
// query's point and radius, signed with a truncated HMAC-SHA256 so an edited
// cursor is refused with booking.EINVALID. Resuming returns clinics strictly
// after that position, so pages never repeat a clinic even if stock changes
// between pages or the index is rebuilt; a clinic that gains stock behind
// the cursor is not shown on later pages (it is for a new search).
//
// # Limits
//
// Distances are on a sphere of EarthRadiusKm (error under 0.5% against the
// ellipsoid, the same for every clinic, so the order is right for practical
// purposes). Queries near a pole or whose disc crosses the antimeridian are
// answered correctly by scanning every longitude of the grid: slower, but
// Korea needs neither.
package clinicsearch
