package auth

import (
	"fmt"
	"strings"
	"time"
)

// ParseProviderSpec parses the command-line form of a provider:
//
//	name=pass,iss=https://pass.example,aud=yeyak,jwks=https://pass.example/jwks.json
//	  [,algs=RS256|ES256][,skew=30s][,sub=CLAIM][,birthdate=CLAIM][,session=CLAIM]
//	  [,refresh=15m][,minrefresh=30s][,backoff=1s][,maxbackoff=1m]
//
// Each optional field sets the ProviderConfig field of the same meaning
// (refresh: RefreshInterval, minrefresh: MinRefreshInterval, backoff:
// RetryBackoff, maxbackoff: MaxRetryBackoff, session: SessionClaim). A
// PersonMapper other than the verbatim default is code, not a spec: set
// MapPerson on the parsed config.
func ParseProviderSpec(s string) (ProviderConfig, error) {
	var pc ProviderConfig
	seen := map[string]bool{}
	for field := range strings.SplitSeq(s, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			return pc, fmt.Errorf("auth: provider spec field %q is not key=value", field)
		}
		if seen[k] {
			return pc, fmt.Errorf("auth: provider spec: field %q given twice", k)
		}
		seen[k] = true
		var d *time.Duration
		switch k {
		case "name":
			pc.Name = val
		case "iss":
			pc.Issuer = val
		case "aud":
			pc.Audience = val
		case "jwks":
			pc.JWKSURL = val
		case "algs":
			pc.Algorithms = strings.Split(val, "|")
		case "sub":
			pc.SubjectClaim = val
		case "birthdate":
			pc.BirthDateClaim = val
		case "session":
			pc.SessionClaim = val
		case "skew":
			d = &pc.Skew
		case "refresh":
			d = &pc.RefreshInterval
		case "minrefresh":
			d = &pc.MinRefreshInterval
		case "backoff":
			d = &pc.RetryBackoff
		case "maxbackoff":
			d = &pc.MaxRetryBackoff
		default:
			return pc, fmt.Errorf("auth: provider spec: unknown field %q", k)
		}
		if d != nil {
			v, err := time.ParseDuration(val)
			if err != nil || v <= 0 {
				return pc, fmt.Errorf("auth: provider spec %s=%q: a positive duration is required", k, val)
			}
			*d = v
		}
	}
	if _, err := newProvider(pc); err != nil {
		return pc, err
	}
	return pc, nil
}
