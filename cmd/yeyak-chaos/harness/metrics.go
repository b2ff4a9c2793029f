package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics are the series of one scrape of a Prometheus text endpoint
// (yeyakd's ops listener, GET /metrics), by name, each with its labels as
// written ({route="POST /v1/bookings",code="201"}, "" for none).
type Metrics map[string][]Series

// Series is one sample of a scrape.
type Series struct {
	Labels string
	Value  float64
}

// Value returns the sample of name with no labels (0 if absent).
func (m Metrics) Value(name string) float64 {
	for _, s := range m[name] {
		if s.Labels == "" {
			return s.Value
		}
	}
	return 0
}

// Sum adds the samples of name whose labels contain every one of want
// (each a `key="value"` pair).
func (m Metrics) Sum(name string, want ...string) float64 {
	var sum float64
	for _, s := range m[name] {
		ok := true
		for _, w := range want {
			if !strings.Contains(s.Labels, w) {
				ok = false
				break
			}
		}
		if ok {
			sum += s.Value
		}
	}
	return sum
}

// Label returns the value of label key in labels ("" if absent).
func Label(labels, key string) string {
	i := strings.Index(labels, key+`="`)
	if i < 0 {
		return ""
	}
	rest := labels[i+len(key)+2:]
	j := strings.Index(rest, `"`)
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// ParseMetrics reads the Prometheus text exposition format: comments are
// skipped, each sample line is name{labels} value.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// Label values may hold spaces: the value is after the last one.
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: value of %q: %w", line, err)
		}
		series := line[:i]
		name, labels := series, ""
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name, labels = series[:j], series[j:]
		}
		m[name] = append(m[name], Series{Labels: labels, Value: v})
	}
	return m, sc.Err()
}

// ScrapeMetrics reads url (e.g. Yeyakd.OpsURL()+"/metrics").
func ScrapeMetrics(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d", url, resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// HistogramQuantile estimates the q-th quantile (0..1) of a Prometheus
// histogram from its cumulative buckets (name_bucket, filtered by want),
// interpolating linearly inside the bucket as Prometheus does; +Inf if it
// falls in the last, open bucket. 0 with no observations.
func (m Metrics) HistogramQuantile(name string, q float64, want ...string) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for _, s := range m[name+"_bucket"] {
		ok := true
		for _, w := range want {
			if !strings.Contains(s.Labels, w) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(Label(s.Labels, "le"), 64)
		if err != nil {
			continue
		}
		bs = append(bs, bucket{le, s.Value})
	}
	if len(bs) == 0 {
		return 0
	}
	// Buckets come in order of le in the exposition; sort to be sure.
	for i := 1; i < len(bs); i++ {
		for j := i; j > 0 && bs[j].le < bs[j-1].le; j-- {
			bs[j], bs[j-1] = bs[j-1], bs[j]
		}
	}
	total := bs[len(bs)-1].n
	if total == 0 {
		return 0
	}
	rank := q * total
	lo, below := 0.0, 0.0
	for _, b := range bs {
		if b.n >= rank {
			if b.le > 1e300 { // +Inf
				return b.le
			}
			if b.n == below {
				return b.le
			}
			return lo + (b.le-lo)*(rank-below)/(b.n-below)
		}
		lo, below = b.le, b.n
	}
	return bs[len(bs)-1].le
}
