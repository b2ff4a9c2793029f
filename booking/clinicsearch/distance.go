package clinicsearch

import "math"

// EarthRadiusKm is the mean Earth radius (IUGG) used for every distance.
const EarthRadiusKm = 6371.0088

const degToRad = math.Pi / 180

// DistanceKm returns the great-circle (haversine) distance in kilometres
// between two points given in degrees. The index computes every distance
// through the same arithmetic, so a result's DistanceKm is bit-for-bit what
// DistanceKm returns for the query point and the clinic.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	p1, p2 := lat1*degToRad, lat2*degToRad
	return hToKm(haversine(p1, math.Cos(p1), lon1*degToRad, p2, math.Cos(p2), lon2*degToRad))
}

// haversine returns the haversine h of the central angle between two points
// given in radians with their latitudes' cosines precomputed. The explicit
// float64 conversions forbid fused multiply-adds, so the result is the same
// wherever the compiler inlines it.
func haversine(p1, cos1, l1, p2, cos2, l2 float64) float64 {
	sp := math.Sin((p2 - p1) / 2)
	sl := math.Sin((l2 - l1) / 2)
	return float64(sp*sp) + float64(float64(cos1*cos2)*float64(sl*sl))
}

// hToKm turns a haversine into kilometres along the great circle.
func hToKm(h float64) float64 {
	h = min(max(h, 0), 1)
	return 2 * EarthRadiusKm * math.Asin(math.Sqrt(h))
}

// kmToH is the inverse of hToKm, used only for a conservative pre-filter.
func kmToH(km float64) float64 {
	s := math.Sin(km / (2 * EarthRadiusKm))
	return s * s
}
