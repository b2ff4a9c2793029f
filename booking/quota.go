package booking

import "hash/fnv"

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
	h := fnv.New32a()
	h.Write([]byte(s.ClinicID + "|" + s.Date.String() + "|" + s.Product))
	shares := Shares(s.Doses, waves, int(h.Sum32()%uint32(waves)))
	out := make([]Quota, waves)
	for w, n := range shares {
		out[w] = row
		out[w].Wave, out[w].Capacity = w, n
	}
	return out
}
