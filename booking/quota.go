package booking

import (
	"hash/fnv"
	"slices"
)

// Shares splits total into waves equal shares by largest remainder: every
// share is total/waves, and the total%waves doses left over go one each to
// waves start, start+1, … (mod waves). Callers rotate start to decide
// deterministically who gets the extra doses, so no wave is favoured across
// clinics. The shares sum to total and differ by at most one. It returns nil
// when waves ≤ 0; a negative total counts as 0.
func Shares(total, waves, start int) []int {
	if waves <= 0 {
		return nil
	}
	total = max(total, 0)
	shares := make([]int, waves)
	base, rem := total/waves, total%waves
	for i := range shares {
		shares[i] = base
	}
	start = ((start % waves) + waves) % waves
	for i := range rem {
		shares[(start+i)%waves]++
	}
	return shares
}

// SplitSupply turns one supply row into quota rows (균등분배). First-dose
// supply (Dose 1, or 0) is split by Shares into c.Waves() rows, wave w
// holding share w, with the remainder starting at a stable hash (FNV-1a) of
// clinic|date|product, so the extra doses land on different waves at
// different clinics and dates but always the same ones for the same supply.
// Second-dose supply (Dose ≥ 2) is one pool: a single OpenWave row.
func SplitSupply(c *Campaign, s Supply) []Quota {
	campaign := s.CampaignID
	if campaign == "" {
		campaign = c.ID
	}
	row := Quota{CampaignID: campaign, ClinicID: s.ClinicID, Date: s.Date, Product: s.Product, Dose: max(s.Dose, 1)}
	if s.Dose >= 2 {
		row.Wave, row.Capacity = OpenWave, max(s.Doses, 0)
		return []Quota{row}
	}
	waves := c.Waves()
	shares := Shares(s.Doses, waves, shareStart(s, waves))
	out := make([]Quota, waves)
	for w, n := range shares {
		out[w] = row
		out[w].Wave, out[w].Capacity = w, n
	}
	return out
}

// shareStart is the wave where SplitSupply's remainder for s begins.
func shareStart(s Supply, waves int) int {
	h := fnv.New32a()
	h.Write([]byte(s.ClinicID + "|" + s.Date.String() + "|" + s.Product))
	return int(h.Sum32() % uint32(waves))
}

// Redistribute returns the new capacity of each quota row of one supply
// row (clinic × date × product × dose) whose supply becomes s.Doses while
// its rows already hold bookings: the rule a supply reload applies.
//
// booked[w] is what wave w's row has booked now (missing entries and rows
// count 0); rolled reports whether rotation wave w has rolled over (its
// window closed and its unbooked share moved to OpenWave, see Roller);
// nil means none has.
//
// For first-dose supply the answer has c.Waves() entries. It starts from
// the equal shares of SplitSupply. A rolled-over wave keeps exactly what
// it has booked, and the rest of its share (or its shortfall) goes to
// OpenWave, as a roll-over would have moved it. Then every wave below its
// own booked count is raised to it, the doses for that taken one by one
// from the wave with the most left to book (the later wave on ties,
// OpenWave last), so what remains bookable stays as even as it can.
// Second-dose supply (Dose ≥ 2) is one OpenWave row holding s.Doses.
//
// ok is false (and caps nil) when s.Doses is below the total booked: the
// reduction cannot be made without cancelling bookings.
func Redistribute(c *Campaign, s Supply, booked []int, rolled func(wave int) bool) (caps []int, ok bool) {
	total, sum := max(s.Doses, 0), 0
	for _, b := range booked {
		sum += b
	}
	if total < sum {
		return nil, false
	}
	if s.Dose >= 2 {
		return []int{total}, true
	}
	waves := c.Waves()
	if len(booked) > waves {
		return nil, false // bookings in waves the campaign no longer has
	}
	b := make([]int, waves)
	copy(b, booked)
	caps = Shares(total, waves, shareStart(s, waves))
	for w := 1; w < waves; w++ {
		if rolled != nil && rolled(w) {
			caps[OpenWave] += caps[w] - b[w]
			caps[w] = b[w]
		}
	}
	deficit := 0
	for w := range caps {
		if caps[w] < b[w] {
			deficit += b[w] - caps[w]
			caps[w] = b[w]
		}
	}
	takeEvenly(caps, b, deficit)
	return caps, true
}

// takeEvenly lowers caps by n in total without taking any below b: always
// from the rows with the most left (caps−b), the later wave first on ties,
// so what is left ends up as level as it can be. The caller guarantees
// that Σ(caps−b) ≥ n.
func takeEvenly(caps, b []int, n int) {
	order := make([]int, len(caps)) // waves by slack, most first; later wave first on ties
	for i := range order {
		order[i] = len(caps) - 1 - i
	}
	for n > 0 {
		slices.SortStableFunc(order, func(x, y int) int { return (caps[y] - b[y]) - (caps[x] - b[x]) })
		top := caps[order[0]] - b[order[0]]
		if top <= 0 {
			return // cannot happen when the caller's guarantee holds
		}
		k, next := 1, 0 // k waves share the top slack; next is the slack below it
		for k < len(order) && caps[order[k]]-b[order[k]] == top {
			k++
		}
		if k < len(order) {
			next = caps[order[k]] - b[order[k]]
		}
		if step := top - next; step*k <= n {
			for _, w := range order[:k] {
				caps[w] -= step
			}
			n -= step * k
			continue
		}
		each, extra := n/k, n%k
		for i, w := range order[:k] {
			caps[w] -= each
			if i < extra {
				caps[w]--
			}
		}
		return
	}
}
