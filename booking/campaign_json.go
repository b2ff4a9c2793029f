package booking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// phaseJSON is Phase as written in campaign files and stored: the window
// offsets are Go durations ("20h", "42h", "0s") so that a person can read
// and write them. Numbers (nanoseconds, the earlier stored form) are still
// read.
type phaseJSON struct {
	Kind                PhaseKind `json:"kind"`
	Starts              Date      `json:"starts"`
	Days                int       `json:"days,omitempty"`
	Opens               duration  `json:"opens"`
	Closes              duration  `json:"closes,omitzero"`
	Digits              []int     `json:"digits,omitempty"`
	BornFrom            Date      `json:"born_from,omitzero"`
	BornTo              Date      `json:"born_to,omitzero"`
	ChangeOutsideWindow bool      `json:"change_outside_window,omitempty"`
}

// MarshalJSON writes the window offsets as durations ("20h").
func (p Phase) MarshalJSON() ([]byte, error) {
	return json.Marshal(phaseJSON{
		Kind: p.Kind, Starts: p.Starts, Days: p.Days, Opens: duration(p.Opens), Closes: duration(p.Closes),
		Digits: p.Digits, BornFrom: p.BornFrom, BornTo: p.BornTo, ChangeOutsideWindow: p.ChangeOutsideWindow,
	})
}

// UnmarshalJSON reads a phase; offsets may be durations ("20h", "41h30m")
// or nanoseconds.
func (p *Phase) UnmarshalJSON(b []byte) error {
	var j phaseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = Phase{Kind: j.Kind, Starts: j.Starts, Days: j.Days, Opens: time.Duration(j.Opens), Closes: time.Duration(j.Closes),
		Digits: j.Digits, BornFrom: j.BornFrom, BornTo: j.BornTo, ChangeOutsideWindow: j.ChangeOutsideWindow}
	return nil
}

// duration is a time.Duration in JSON as "20h" (or a number of nanoseconds).
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) {
	// "20h" and "41h30m" rather than "20h0m0s".
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return json.Marshal(s)
}

func (d *duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want e.g. \"20h\" or \"41h30m\"", s)
		}
		*d = duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string like \"20h\" or nanoseconds")
	}
	*d = duration(n)
	return nil
}

// maxCampaignFile bounds a campaign file (a campaign is a few kilobytes).
const maxCampaignFile = 1 << 20

// ParseCampaigns reads a campaign file: one campaign object or an array of
// them, in the JSON of Campaign (phase offsets as durations, e.g. "opens":
// "20h", "closes": "42h" for 20:00 to 18:00 the next day; dates
// YYYY-MM-DD; open_until RFC 3339). Unknown fields are refused, and every
// campaign is validated. Returns EINVALID naming the campaign and the
// problem.
func ParseCampaigns(b []byte) ([]*Campaign, error) {
	if len(b) > maxCampaignFile {
		return nil, Errorf(EINVALID, "campaign file is larger than %d bytes", maxCampaignFile)
	}
	b = bytes.TrimSpace(b)
	var list []*Campaign
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var err error
	if len(b) > 0 && b[0] == '[' {
		err = dec.Decode(&list)
	} else {
		var c Campaign
		err = dec.Decode(&c)
		list = []*Campaign{&c}
	}
	if err != nil {
		return nil, Errorf(EINVALID, "campaign file: %v", err)
	}
	if dec.More() {
		return nil, Errorf(EINVALID, "campaign file: data after the JSON value")
	}
	if len(list) == 0 {
		return nil, Errorf(EINVALID, "campaign file holds no campaign")
	}
	seen := map[string]bool{}
	for i, c := range list {
		if c == nil {
			return nil, Errorf(EINVALID, "campaign %d is null", i+1)
		}
		if err := c.Validate(); err != nil {
			return nil, Errorf(EINVALID, "campaign %d (%q): %s", i+1, c.ID, ErrorMessage(err))
		}
		if seen[c.ID] {
			return nil, Errorf(EINVALID, "campaign %q appears twice", c.ID)
		}
		seen[c.ID] = true
	}
	return list, nil
}
