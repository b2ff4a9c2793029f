package population

import "sort"

// Region is one 시도 (province-level division) of Korea as the generator uses
// it: its two-digit administrative code, a rough bounding box of where its
// people live and a weight proportional to its population (2021, thousands).
type Region struct {
	Code     string // two-digit 시도 code, e.g. "11" for Seoul
	Name     string // English name
	NameKo   string // Korean name, used in clinic names
	Weight   int    // population in thousands, for weighted picks
	Sigungu  int    // number of 시군구 codes generated under it
	MinLat   float64
	MaxLat   float64
	MinLon   float64
	MaxLon   float64
	cumStart int
}

// regions are the seventeen 시도 with rough boxes. The boxes are coarse (a
// coastal province's box includes some sea); they only need to make "near
// me" meaningful, not to match a map.
var regions = []Region{
	{Code: "11", Name: "Seoul", NameKo: "서울", Weight: 9500, Sigungu: 25, MinLat: 37.43, MaxLat: 37.70, MinLon: 126.76, MaxLon: 127.18},
	{Code: "26", Name: "Busan", NameKo: "부산", Weight: 3350, Sigungu: 16, MinLat: 35.05, MaxLat: 35.30, MinLon: 128.85, MaxLon: 129.22},
	{Code: "27", Name: "Daegu", NameKo: "대구", Weight: 2390, Sigungu: 8, MinLat: 35.75, MaxLat: 35.98, MinLon: 128.45, MaxLon: 128.75},
	{Code: "28", Name: "Incheon", NameKo: "인천", Weight: 2950, Sigungu: 10, MinLat: 37.35, MaxLat: 37.60, MinLon: 126.55, MaxLon: 126.80},
	{Code: "29", Name: "Gwangju", NameKo: "광주", Weight: 1440, Sigungu: 5, MinLat: 35.08, MaxLat: 35.25, MinLon: 126.75, MaxLon: 127.00},
	{Code: "30", Name: "Daejeon", NameKo: "대전", Weight: 1450, Sigungu: 5, MinLat: 36.25, MaxLat: 36.45, MinLon: 127.30, MaxLon: 127.50},
	{Code: "31", Name: "Ulsan", NameKo: "울산", Weight: 1120, Sigungu: 5, MinLat: 35.45, MaxLat: 35.65, MinLon: 129.15, MaxLon: 129.45},
	{Code: "36", Name: "Sejong", NameKo: "세종", Weight: 370, Sigungu: 1, MinLat: 36.45, MaxLat: 36.65, MinLon: 127.20, MaxLon: 127.35},
	{Code: "41", Name: "Gyeonggi", NameKo: "경기", Weight: 13500, Sigungu: 31, MinLat: 36.95, MaxLat: 38.05, MinLon: 126.70, MaxLon: 127.70},
	{Code: "42", Name: "Gangwon", NameKo: "강원", Weight: 1540, Sigungu: 18, MinLat: 37.10, MaxLat: 38.50, MinLon: 127.60, MaxLon: 129.30},
	{Code: "43", Name: "Chungbuk", NameKo: "충북", Weight: 1600, Sigungu: 11, MinLat: 36.10, MaxLat: 37.20, MinLon: 127.30, MaxLon: 128.30},
	{Code: "44", Name: "Chungnam", NameKo: "충남", Weight: 2120, Sigungu: 15, MinLat: 36.00, MaxLat: 36.95, MinLon: 126.30, MaxLon: 127.40},
	{Code: "45", Name: "Jeonbuk", NameKo: "전북", Weight: 1790, Sigungu: 14, MinLat: 35.40, MaxLat: 36.10, MinLon: 126.50, MaxLon: 127.80},
	{Code: "46", Name: "Jeonnam", NameKo: "전남", Weight: 1830, Sigungu: 22, MinLat: 34.40, MaxLat: 35.40, MinLon: 126.20, MaxLon: 127.70},
	{Code: "47", Name: "Gyeongbuk", NameKo: "경북", Weight: 2630, Sigungu: 23, MinLat: 35.70, MaxLat: 37.00, MinLon: 128.00, MaxLon: 129.50},
	{Code: "48", Name: "Gyeongnam", NameKo: "경남", Weight: 3310, Sigungu: 18, MinLat: 34.80, MaxLat: 35.70, MinLon: 127.70, MaxLon: 129.20},
	{Code: "50", Name: "Jeju", NameKo: "제주", Weight: 680, Sigungu: 2, MinLat: 33.25, MaxLat: 33.50, MinLon: 126.20, MaxLon: 126.90},
}

var totalWeight int

func init() {
	for i := range regions {
		regions[i].cumStart = totalWeight
		totalWeight += regions[i].Weight
	}
}

// Regions returns the 시도 the generator spreads people and clinics over, in
// code order. The slice is a copy.
func Regions() []Region {
	return append([]Region(nil), regions...)
}

// pickRegion maps u in [0,1) to a region, weighted by population.
func pickRegion(u float64) *Region {
	x := int(u * float64(totalWeight))
	i := sort.Search(len(regions), func(i int) bool { return regions[i].cumStart+regions[i].Weight > x })
	if i == len(regions) {
		i = len(regions) - 1
	}
	return &regions[i]
}
