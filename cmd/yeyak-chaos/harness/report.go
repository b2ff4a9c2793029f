package harness

import "strings"

// Markers delimit the chaos verdicts in BENCHMARKS.md: yeyak-chaos
// --report writes between them, yeyak-bench keeps what is there.
const (
	ChaosBegin = "<!-- chaos verdicts: written by yeyak-chaos --report -->"
	ChaosEnd   = "<!-- end of chaos verdicts -->"
)

// Inside the chaos section, the fault scenarios' verdicts and the surge's
// figures have markers of their own, so a run of either part (make surge)
// replaces that part and keeps the other.
const (
	FaultsBegin = "<!-- fault scenarios -->"
	FaultsEnd   = "<!-- end of fault scenarios -->"
	SurgeBegin  = "<!-- surge -->"
	SurgeEnd    = "<!-- end of surge -->"
)

// Inner returns the text between begin and end in doc, markers excluded
// and trimmed of surrounding newlines; "" when doc has none.
func Inner(doc, begin, end string) string {
	sec := Section(doc, begin, end)
	if sec == "" {
		return ""
	}
	return strings.Trim(sec[len(begin):len(sec)-len(end)], "\n")
}

// Section returns the text between begin and end in doc (markers
// included), or "" when doc has none.
func Section(doc, begin, end string) string {
	i := strings.Index(doc, begin)
	if i < 0 {
		return ""
	}
	j := strings.Index(doc[i:], end)
	if j < 0 {
		return ""
	}
	return doc[i : i+j+len(end)]
}

// Splice replaces the section between begin and end in doc with body
// (markers added), or appends it when doc has none.
func Splice(doc, begin, end, body string) string {
	block := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end
	if old := Section(doc, begin, end); old != "" {
		return strings.Replace(doc, old, block, 1)
	}
	if doc != "" && !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	if doc != "" {
		doc += "\n"
	}
	return doc + block + "\n"
}
